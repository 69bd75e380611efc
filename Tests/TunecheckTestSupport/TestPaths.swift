import Foundation

/// Where the repository and its own fixtures are, found from this file's path so tests run from any directory.
public enum TestPaths {
    /// The clone's root: the nearest folder above this file holding `Package.swift` (the working directory if none).
    public static let repositoryRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    /// `Tests/Fixtures`: the repository's own small fixtures.
    public static let ownFixtures = repositoryRoot.appendingPathComponent("Tests/Fixtures")

    /// `<root>/relative`.
    public static func repository(_ relative: String) -> URL { repositoryRoot.appendingPathComponent(relative) }

    /// A new empty folder under the system's temporary directory, named `tunecheck-<label>-<random>`.
    public static func temporaryDirectory(_ label: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tunecheck-\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
