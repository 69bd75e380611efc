import Foundation
import Testing

/// The shared reference fixtures (`../shared/fixtures` beside the clone, read-only; CI has them, a user's clone may
/// not). Never copied into the repository. `TUNECHECK_SHARED_FIXTURES` overrides the location.
///
/// Tests that need them take `SharedFixtures.required(…)` as a trait, so they report as skipped with
/// `skipReason` when the folder is absent, instead of failing or passing silently.
public enum SharedFixtures {
    /// Where the shared fixtures are looked for: `$TUNECHECK_SHARED_FIXTURES` if set and not empty, otherwise
    /// `<repository root>/../shared/fixtures`.
    public static let location: URL = {
        if let override = ProcessInfo.processInfo.environment["TUNECHECK_SHARED_FIXTURES"], !override.isEmpty {
            return URL(fileURLWithPath: override)
        }
        return TestPaths.repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures")
    }()

    /// The shared fixtures folder, or nil when it is absent (no `README.md` at `location`).
    public static let root: URL? = {
        FileManager.default.fileExists(atPath: location.appendingPathComponent("README.md").path) ? location : nil
    }()

    public static var isAvailable: Bool { root != nil }

    /// Why tests needing the shared fixtures are skipped.
    public static var skipReason: String {
        "skipped: ../shared/fixtures absent (looked in \(location.path); set TUNECHECK_SHARED_FIXTURES)"
    }

    /// `<shared fixtures>/relative`, or nil when the shared fixtures are absent.
    public static func path(_ relative: String) -> URL? { root?.appendingPathComponent(relative) }

    /// The shared schemas folder beside the fixtures (`<shared>/schemas`, holding the Jenkins `junit-10.xsd`), or nil
    /// when absent.
    public static let schemas: URL? = {
        let folder = location.deletingLastPathComponent().appendingPathComponent("schemas")
        return FileManager.default.fileExists(atPath: folder.appendingPathComponent("junit-10.xsd").path) ? folder : nil
    }()

    /// The Jenkins JUnit schema, or nil when the shared schemas are absent.
    public static var junitSchema: URL? { schemas?.appendingPathComponent("junit-10.xsd") }

    /// A test trait: run only when the shared fixtures are present (and `also` holds), otherwise skip, saying why and
    /// what is skipped.
    public static func required(_ what: String, also: @escaping @Sendable () -> Bool = { true }) -> ConditionTrait {
        .enabled(if: isAvailable && also(), Comment(rawValue: "\(skipReason): \(what)"))
    }

    /// A test trait: run only when the shared JUnit schema is present.
    public static func schemaRequired(_ what: String) -> ConditionTrait {
        .enabled(if: junitSchema != nil,
                 Comment(rawValue: "skipped: ../shared/schemas/junit-10.xsd absent (looked beside \(location.path)): \(what)"))
    }
}
