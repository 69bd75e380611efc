import Foundation
import TunecheckEngine
import TunecheckJSON

/// Sharded evaluation: `recordShard` computes one shard's units and returns its part; `merging` rebuilds a session
/// from the parts whose contexts serve the recorded values, runs the same suites on them and so writes the reports
/// an unsharded run writes (aggregates recomputed from the merged items).
extension EvaluationSession {
    /// A subject of the evaluation as a sharded run plans it, with the work the active suites need on it.
    struct PlannedSubject {
        var name: String
        var kind: SubjectKind
        var step: Int?
        var spec: CheckpointSpec?
        var fused: SuiteConfiguration.FusedModel?
        var supplied: [GoldenOutput]?
        /// Split by item (computations on this subject's own context).
        var perItem: [ContextComputation] = []
        /// Done once, by the shard owning the subject's subject-level unit.
        var subjectLevel: [ContextComputation] = []
        var wholeSuites: [any EvaluationSuite.Type] = []

        var hasSubjectWork: Bool { !subjectLevel.isEmpty || !wholeSuites.isEmpty }
    }

    /// Every subject in evaluation order (the base, supplied answers, fused folders, checkpoints) with its work.
    func plannedSubjects() throws -> [PlannedSubject] {
        var subjects: [PlannedSubject] = []
        if base != nil { subjects.append(PlannedSubject(name: CheckpointSpec.base.name, kind: .base, step: nil)) }
        for (name, outputs) in groupedSuppliedAnswers() {
            subjects.append(PlannedSubject(name: name, kind: .suppliedAnswers, step: CheckpointName.step(in: name), supplied: outputs))
        }
        for fused in settings.fused {
            let context = try fusedContext(fused)
            subjects.append(PlannedSubject(name: context.name, kind: .fused, step: context.step, fused: fused))
        }
        for spec in settings.checkpoints {
            subjects.append(PlannedSubject(name: spec.name, kind: .checkpoint, step: spec.step, spec: spec))
        }
        var baseSide: [ContextComputation] = []
        for index in subjects.indices {
            let kind = subjects[index].kind
            for suite in activeSuites where suite.applies(to: kind) {
                switch suite.sharding(on: kind) {
                case .wholeSuite:
                    subjects[index].wholeSuites.append(suite)
                case .computations(let computations):
                    for computation in computations {
                        if computation.onBase {
                            let own = ContextComputation(name: computation.name, scope: computation.scope, prefetch: computation.prefetch)
                            if !baseSide.contains(own) { baseSide.append(own) }
                        } else if computation.scope == .subject || kind == .suppliedAnswers || kind == .fused {
                            // Supplied answers are read, not computed: nothing to split.
                            if !subjects[index].subjectLevel.contains(computation) { subjects[index].subjectLevel.append(computation) }
                        } else if !subjects[index].perItem.contains(computation) {
                            subjects[index].perItem.append(computation)
                        }
                    }
                }
            }
        }
        if let baseIndex = subjects.firstIndex(where: { $0.kind == .base }) {
            for computation in baseSide where !subjects[baseIndex].perItem.contains(computation) {
                subjects[baseIndex].perItem.append(computation)
            }
        }
        return subjects
    }

    /// The units of work, in plan order, weighted by token counts (the base's tokenizer; bytes / 4 without one).
    func workUnits(_ subjects: [PlannedSubject]) -> [WorkUnit] {
        var tokenMemo: [String: Int] = [:]
        func tokens(_ text: String) -> Int {
            if let known = tokenMemo[text] { return known }
            let count = base.map { $0.tokenizer.encode(text).count } ?? max(1, text.utf8.count / 4)
            tokenMemo[text] = count
            return count
        }
        func itemTokens(_ scope: ContextComputation.Scope, _ index: Int) -> Int {
            switch scope {
            case .prompts: return tokens(prompts[index].prompt)
            case .pairs: return tokens(pairs[index].prompt + pairs[index].chosen) + tokens(pairs[index].prompt + pairs[index].rejected)
            case .texts: return tokens(texts[index].text)
            case .choices:
                let item = choiceItems[index]
                return item.choices.map { tokens(item.context + item.targetDelimiter + $0) }.reduce(0, +)
            case .subject: return 1
            }
        }
        var units: [WorkUnit] = []
        for (subjectIndex, subject) in subjects.enumerated() {
            var itemWeights: [Double] = []
            for scope in [ContextComputation.Scope.prompts, .pairs, .texts, .choices] {
                let computations = subject.perItem.filter { $0.scope == scope }
                guard !computations.isEmpty else { continue }
                let ids = itemIds(scope)
                for group in itemGroups(scope) {
                    var weight = 0.0
                    for index in group {
                        let count = itemTokens(scope, index)
                        let itemWeight = computations.map { ShardPlan.cost($0, tokens: count, maxNewTokens: settings.generation.maxTokens) }
                            .reduce(0, +)
                        itemWeights.append(itemWeight)
                        weight += itemWeight
                    }
                    units.append(WorkUnit(subject: subjectIndex, scope: scope, items: group.map { ids[$0] }, weight: weight))
                }
            }
            if subject.hasSubjectWork {
                // Not per item (a weight delta, a golden file): counted as one average item of the subject.
                units.append(WorkUnit(subject: subjectIndex, scope: .subject, items: [], weight: max(1, Statistics.mean(itemWeights))))
            }
        }
        return units
    }

    // MARK: - One shard

    /// Runs shard `shard` of the evaluation: computes the units it owns and returns them as a part. Runs no
    /// aggregate check (a subset cannot be judged); suites whose work is not per item run whole on their owner.
    /// `anchor` is the folder paths are made relative to for the settings hash (the suite file's).
    public func recordShard(_ shard: ShardSpec, anchor: URL) throws -> ShardPart {
        if settings.updateGolden { throw ShardError.updateGoldenWithShard }
        try loadInputs()
        let subjects = try plannedSubjects()
        let units = workUnits(subjects)
        let owners = ShardPlan.assign(weights: units.map(\.weight), count: shard.count)
        let mine = units.indices.filter { owners[$0] == shard.index - 1 }.map { units[$0] }
        var records: [SubjectRecord?] = Array(repeating: nil, count: subjects.count)
        var done = 0
        for (subjectIndex, subject) in subjects.enumerated() {
            let owned = mine.filter { $0.subject == subjectIndex }
            guard !owned.isEmpty else { continue }
            report("shard \(shard): \(subject.name)", done, mine.count)
            let context = try context(for: subject)
            let recorder = SubjectRecord()
            context.recorder = recorder
            for scope in [ContextComputation.Scope.prompts, .pairs, .texts, .choices] {
                let ids = Set(owned.filter { $0.scope == scope }.flatMap(\.items))
                guard !ids.isEmpty else { continue }
                context.restriction = [scope: ids]
                for computation in subject.perItem where computation.scope == scope { try computation.prefetch(context) }
            }
            context.restriction = nil
            if owned.contains(where: { $0.scope == .subject }) {
                context.recordsSubjectValues = true
                for computation in subject.subjectLevel { try computation.prefetch(context) }
                for suite in subject.wholeSuites { recorder.recordSuite(suite.kind, try suite.run(in: context)) }
                context.recordsSubjectValues = false
            }
            records[subjectIndex] = recorder
            done += owned.count
        }
        report("shard \(shard)", mine.count, mine.count)

        let hash = try SettingsDigest.hash(settings, subjects: subjects.map(\.name), anchor: anchor)
        var payload = JSONObject()
        payload.set("shard", .from(shard.index))
        payload.set("shards", .from(shard.count))
        payload.set("tunecheck_version", .string(TunecheckVersion.current))
        payload.set("settings_hash", .string(hash))
        payload.set("settings", try SessionSettingsCoding.encode(settings))
        var items = JSONObject()
        for scope in [ContextComputation.Scope.prompts, .pairs, .texts, .choices] {
            items.set(scope.rawValue, .array(itemIds(scope).map { .string($0) }))
        }
        payload.set("items", .object(items))
        payload.set("units", .object(JSONObject(["total": .from(units.count), "owned": .from(mine.count)])))
        payload.set("started_at", .from(startedAt.timeIntervalSince1970))
        payload.set("duration_seconds", .from(Date().timeIntervalSince(startedAt)))
        // With a cache folder, where the base's whole results belong in it: `merge --cache-dir` stores them there,
        // so the next run's shards (restoring the folder) read them instead of computing their parts again.
        payload.set("base_cache_keys", ShardCodec.strings(try baseCacheKeys()))
        payload.set("subjects", .array(subjects.enumerated().map { index, subject in
            .object(JSONObject([
                "name": .string(subject.name), "kind": .string(SessionSettingsCoding.word(subject.kind)),
                "step": subject.step.map { .from($0) } ?? .null, "record": records[index]?.json ?? .null,
            ]))
        }))
        return ShardPart(shard: shard, settingsHash: hash, payload: .object(payload))
    }

    private func context(for subject: PlannedSubject) throws -> EvaluationContext {
        switch subject.kind {
        case .base:
            guard let baseContext else { throw HarnessError.missingInput("the base model is needed (give --base DIR)") }
            return baseContext
        case .suppliedAnswers:
            return EvaluationContext(name: subject.name, step: subject.step, kind: .suppliedAnswers, session: self, suppliedAnswers: subject.supplied)
        case .fused:
            return try fusedContext(subject.fused!)
        case .checkpoint:
            let checkpoint = try LoadedCheckpoint.load(subject.spec!, base: base)
            return EvaluationContext(name: subject.name, step: subject.step, kind: .checkpoint, session: self, checkpoint: checkpoint)
        }
    }

    // MARK: - Merging

    /// A session rebuilt from complete, consistent parts (`ShardPart.checkComplete`), every subject evaluated on the
    /// merged values: its `makeReport()`, `writeReports()` and `failures` are those of the unsharded run.
    public static func merging(_ parts: [ShardPart], reports: ReportSettings?, cacheDirectory: URL? = nil,
                               registry: [any EvaluationSuite.Type] = SuiteRegistry.all) throws -> EvaluationSession {
        try ShardPart.checkComplete(parts)
        let ordered = parts.sorted { $0.shard.index < $1.shard.index }
        let first = ordered[0]
        func corrupt(_ part: ShardPart, _ reason: String) -> ShardError { .corrupt(path: part.path, reason: reason) }
        guard let payload = first.payload.object, let settingsValue = payload["settings"] else { throw corrupt(first, "no settings") }
        let settings = try SessionSettingsCoding.decode(settingsValue, path: first.path)
        let session = EvaluationSession(settings: settings, reports: reports, registry: registry)
        var itemIds: [ContextComputation.Scope: [String]] = [:]
        for scope in [ContextComputation.Scope.prompts, .pairs, .texts, .choices] {
            guard let ids = payload["items"]?.object?[scope.rawValue]?.array?.compactMap(\.string) else {
                throw corrupt(first, "no \(scope.rawValue) ids")
            }
            itemIds[scope] = ids
        }
        session.replayedItemIds = itemIds
        // The report's start and duration: the shards' span, not the merge's few milliseconds.
        let spans = ordered.compactMap { part -> (Double, Double)? in
            guard let object = part.payload.object, let start = object["started_at"]?.double,
                  let duration = object["duration_seconds"]?.double else { return nil }
            return (start, start + duration)
        }
        if let start = spans.map(\.0).min(), let end = spans.map(\.1).max() {
            session.mergedTiming = (Date(timeIntervalSince1970: start), end - start)
        }

        // Subjects in order, each with the union of the parts' records.
        struct Subject { var name: String; var kind: SubjectKind; var step: Int?; var record: SubjectRecord }
        var subjects: [Subject] = []
        for part in ordered {
            guard let entries = part.payload.object?["subjects"]?.array else { throw corrupt(part, "no subjects") }
            if subjects.isEmpty {
                for entry in entries {
                    guard let object = entry.object, let name = object["name"]?.string,
                          let kind = object["kind"]?.string.flatMap(SessionSettingsCoding.subjectKind) else {
                        throw corrupt(part, "a subject without name or kind")
                    }
                    subjects.append(Subject(name: name, kind: kind, step: object["step"]?.int, record: SubjectRecord()))
                }
            }
            guard entries.count == subjects.count else { throw corrupt(part, "\(entries.count) subjects, the first part has \(subjects.count)") }
            for (index, entry) in entries.enumerated() {
                guard let object = entry.object, object["name"]?.string == subjects[index].name else {
                    throw corrupt(part, "subject \(index + 1) differs from the first part's")
                }
                guard let value = object["record"], !value.isNull else { continue }
                guard let record = SubjectRecord(json: value) else { throw corrupt(part, "unreadable record of \(subjects[index].name)") }
                subjects[index].record.merge(record)
            }
        }

        // The same order as `prepare()` then `evaluateAll()`.
        for subject in subjects {
            let context = EvaluationContext(name: subject.name, step: subject.step, kind: subject.kind, session: session)
            context.replay = subject.record
            switch subject.kind {
            case .base:
                session.baseContext = context
                if let evaluation = try session.run(context, recordEmpty: false) { session.record(evaluation) }
            case .fused:
                _ = try session.run(context, recordEmpty: false)
            case .suppliedAnswers, .checkpoint:
                if let evaluation = try session.run(context, recordEmpty: true) { session.record(evaluation) }
            }
        }
        if let cacheDirectory, let keys = ShardCodec.strings(payload["base_cache_keys"]), !keys.isEmpty {
            try session.storeMergedBaseResults(keys: keys, in: cacheDirectory)
        }
        return session
    }

    /// Stores the base's merged results in the cache under the keys the shards computed (entries already there
    /// are left alone): the same entries an unsharded run with this cache folder writes.
    private func storeMergedBaseResults(keys: [String: String], in directory: URL) throws {
        let cache = try BaseResultCache(directory: directory)
        cache.onNotice = { [weak self] in self?.notice($0) }
        self.cache = cache
        let stored: [(kind: String, value: () throws -> JSONValue?)] = [
            ("pairs", { try self.basePairScores().map(BaseResultCache.encode) }),
            ("texts", { try self.baseTextScores().map(BaseResultCache.encode) }),
            ("answers", { try self.baseContext?.answers().map { BaseResultCache.encode($0.outputs) } }),
        ]
        for (kind, value) in stored {
            guard let key = keys[kind], cache.lookup(kind: kind, key: key, decode: { $0 }) == nil,
                  let payload = try? value() else { continue }
            cache.store(kind: kind, key: key, payload: payload)
        }
    }
}

/// `SessionSettings` in a part file: what `merge` needs to rebuild the session and write the same reports.
enum SessionSettingsCoding {
    static func word(_ kind: SubjectKind) -> String {
        switch kind {
        case .base: return "base"
        case .checkpoint: return "checkpoint"
        case .suppliedAnswers: return "answers"
        case .fused: return "fused"
        }
    }

    static func subjectKind(_ word: String) -> SubjectKind? {
        ["base": .base, "checkpoint": .checkpoint, "answers": .suppliedAnswers, "fused": .fused][word]
    }

    static func encode(_ settings: SessionSettings) throws -> JSONValue {
        func optional(_ text: String?) -> JSONValue { text.map { .string($0) } ?? .null }
        var object = JSONObject()
        object.set("name", .string(settings.name))
        object.set("base", optional(settings.base?.path))
        object.set("checkpoints", .array(settings.checkpoints.map { spec in
            let (source, path): (String, String?)
            switch spec.source {
            case .base: (source, path) = ("base", nil)
            case .adapter(let url): (source, path) = ("adapter", url.path)
            case .modelFolder(let url): (source, path) = ("model", url.path)
            }
            return .object(JSONObject(["name": .string(spec.name), "step": spec.step.map { .from($0) } ?? .null,
                                       "source": .string(source), "path": optional(path)]))
        }))
        object.set("fused", .array(settings.fused.map { .object(JSONObject(["path": .string($0.path), "adapter": optional($0.adapter)])) }))
        object.set("evalsets", try JSONValueEncoder().encode(settings.evalsets))
        object.set("suites", settings.suites.map { .array($0.map { .string($0.rawValue) }) } ?? .null)
        object.set("generation", try JSONValueEncoder().encode(settings.generation))
        object.set("thresholds", try JSONValueEncoder().encode(settings.thresholds))
        object.set("golden_dir", .string(settings.goldenDirectory.path))
        object.set("golden_suite_name", .string(settings.goldenSuiteName))
        return .object(object)
    }

    static func decode(_ value: JSONValue, path: String) throws -> SessionSettings {
        func corrupt(_ reason: String) -> ShardError { .corrupt(path: path, reason: "settings: \(reason)") }
        guard let object = value.object, let name = object["name"]?.string, let checkpoints = object["checkpoints"]?.array,
              let fused = object["fused"]?.array, let evalsets = object["evalsets"], let generation = object["generation"],
              let thresholds = object["thresholds"], let goldenDir = object["golden_dir"]?.string,
              let goldenSuiteName = object["golden_suite_name"]?.string else { throw corrupt("missing fields") }
        var settings = SessionSettings()
        settings.name = name
        settings.base = object["base"]?.string.map { URL(fileURLWithPath: $0) }
        settings.checkpoints = try checkpoints.map { entry in
            guard let spec = entry.object, let name = spec["name"]?.string, let source = spec["source"]?.string else { throw corrupt("a checkpoint") }
            let url = URL(fileURLWithPath: spec["path"]?.string ?? "")
            let kind: CheckpointSource = source == "adapter" ? .adapter(url) : source == "model" ? .modelFolder(url) : .base
            return CheckpointSpec(name: name, source: kind, step: spec["step"]?.int)
        }
        settings.fused = try fused.map { entry in
            guard let model = entry.object, let path = model["path"]?.string else { throw corrupt("a fused model") }
            return SuiteConfiguration.FusedModel(path: path, adapter: model["adapter"]?.string)
        }
        do {
            settings.evalsets = try JSONValueDecoder().decode(SuiteConfiguration.Evalsets.self, from: evalsets)
            settings.generation = try JSONValueDecoder().decode(GenerationSettings.self, from: generation)
            settings.thresholds = try JSONValueDecoder().decode(Thresholds.self, from: thresholds)
        } catch {
            throw corrupt("\(error)")
        }
        if let suites = object["suites"]?.array {
            settings.suites = try suites.map { value in
                guard let word = value.string, let kind = SuiteKind(rawValue: word) else { throw corrupt("unknown suite \(JSONWriter.string(value))") }
                return kind
            }
        }
        settings.goldenDirectory = URL(fileURLWithPath: goldenDir)
        settings.goldenSuiteName = goldenSuiteName
        return settings
    }
}
