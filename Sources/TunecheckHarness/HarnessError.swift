import Foundation

/// Problems with the harness's inputs: suite files, evalsets, checkpoints, golden files. Each names the file.
public enum HarnessError: Error, LocalizedError, Equatable {
    case invalidSuite(path: String, reason: String)
    case invalidEvalset(path: String, line: Int?, reason: String)
    case checkpointNotFound(path: String)
    case invalidCheckpoint(path: String, reason: String)
    case invalidGolden(path: String, reason: String)
    case missingInput(String)
    case writeFailed(path: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case let .invalidSuite(path, reason): return "\(path): invalid suite file: \(reason)"
        case let .invalidEvalset(path, line, reason):
            return line.map { "\(path):\($0): \(reason)" } ?? "\(path): \(reason)"
        case let .checkpointNotFound(path): return "\(path): checkpoint not found"
        case let .invalidCheckpoint(path, reason): return "\(path): cannot load checkpoint: \(reason)"
        case let .invalidGolden(path, reason): return "\(path): invalid golden file: \(reason)"
        case let .missingInput(message): return message
        case let .writeFailed(path, reason): return "\(path): cannot write: \(reason)"
        }
    }
}
