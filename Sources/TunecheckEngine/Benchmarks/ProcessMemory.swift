import Foundation

/// This process's memory from /proc/self/status, split the way the memory check counts it: anonymous memory
/// (`RssAnon`: heap, activations, widened copies) and file-backed memory (`RssFile`: the memory-mapped weights, which
/// the page cache can drop and re-read).
public struct ProcessMemory: Sendable, Equatable {
    public var residentBytes: Double
    public var anonymousBytes: Double
    public var fileBytes: Double
    /// `VmHWM`: the kernel's own peak resident size.
    public var peakResidentBytes: Double

    /// Now (nil where there is no /proc).
    public static func current() -> ProcessMemory? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, fields[0].hasSuffix(":"), let kilobytes = Double(fields[1]) else { continue }
            values[String(fields[0].dropLast())] = kilobytes * 1024
        }
        guard let resident = values["VmRSS"], let anonymous = values["RssAnon"] else { return nil }
        return ProcessMemory(residentBytes: resident, anonymousBytes: anonymous, fileBytes: values["RssFile"] ?? 0,
                             peakResidentBytes: values["VmHWM"] ?? resident)
    }
}

/// Samples `ProcessMemory` on a background thread (every `interval` seconds) and keeps the peaks: the kernel reports
/// a peak for resident memory (`VmHWM`) but none for anonymous memory, which is what a model-sized copy would show in.
public final class MemorySampler: @unchecked Sendable {
    private let lock = NSLock()
    private var peakAnonymous = 0.0
    private var peakResident = 0.0
    private var running = true
    private let thread: Thread

    public init(interval: TimeInterval = 0.005) {
        let box = WeakBox()
        thread = Thread {
            while let sampler = box.sampler, sampler.sample() { Thread.sleep(forTimeInterval: interval) }
        }
        box.sampler = self
        _ = sample()
        thread.start()
    }

    private final class WeakBox: @unchecked Sendable { weak var sampler: MemorySampler? }

    /// Takes one sample; false once stopped.
    @discardableResult
    func sample() -> Bool {
        guard let memory = ProcessMemory.current() else { return false }
        lock.lock()
        defer { lock.unlock() }
        peakAnonymous = max(peakAnonymous, memory.anonymousBytes)
        peakResident = max(peakResident, memory.residentBytes, memory.peakResidentBytes)
        return running
    }

    /// Stops sampling (after one last sample) and returns the peaks in bytes.
    public func stop() -> (anonymous: Double, resident: Double) {
        sample()
        lock.lock()
        running = false
        defer { lock.unlock() }
        return (peakAnonymous, peakResident)
    }

    deinit {
        lock.lock()
        running = false
        lock.unlock()
    }
}
