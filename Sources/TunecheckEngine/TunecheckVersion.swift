/// tunecheck's version: `--version`, reports (report.json's `tunecheck_version`), training run records. One
/// constant every layer reads, so what a report says made it is what ran.
public enum TunecheckVersion {
    public static let current = "0.2.0"
}
