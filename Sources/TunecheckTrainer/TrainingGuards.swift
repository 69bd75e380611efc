import Foundation
import TunecheckEngine

/// The guards that can stop a run, by the names messages and run records use.
public enum TrainingGuard: String, Sendable, Codable, CaseIterable {
    case nonFinite = "non-finite"
    case maxMargin = "max-margin"
    case minLoss = "min-loss"
    case repetition
    case noLearning = "no-learning"
}

/// A guard that tripped: which, where, and the number against its limit (the run record's stop record).
public struct GuardTrip: Sendable, Equatable {
    public var guardName: TrainingGuard
    public var step: Int
    /// The checkpoint it tripped on, when it judged one (repetition, no-learning).
    public var checkpoint: String?
    public var value: Double?
    public var threshold: Double?
    public var reason: String

    /// The error a stopped run ends with (exit 1).
    public var error: TrainerError {
        .guardTripped(guardName: guardName.rawValue, checkpoint: checkpoint ?? "step \(step)", reason: reason)
    }
}

/// One guard with its limits, as configured (`guards:` in the training config).
public enum GuardRule: Sendable, Equatable {
    /// A NaN or infinite loss or gradient norm: stop before the update is applied (nothing of it is saved).
    case nonFinite
    /// DPO: the step's mean reward margin above this (the motivating run: 0.2 → 18 in a few steps).
    case maxMargin(Double)
    /// The loss below `floor` within the first `steps` steps: a shortcut, not learning.
    case minLoss(floor: Double, withinSteps: Int)
    /// A saved checkpoint whose answers collapse into repetition.
    case repetition
    /// After `afterSteps` steps, LoRA weights that moved less than `below` relative (‖ΔW‖/‖W‖).
    case noLearning(afterSteps: Int, below: Double)

    public var guardName: TrainingGuard {
        switch self {
        case .nonFinite: return .nonFinite
        case .maxMargin: return .maxMargin
        case .minLoss: return .minLoss
        case .repetition: return .repetition
        case .noLearning: return .noLearning
        }
    }
}

/// What the step guards look at after a step.
struct StepObservation {
    var step: Int
    /// Steps done in this invocation (1 after the first).
    var stepsDone: Int
    var loss: Double
    var gradientNorm: Double
    var metrics: [MetricName: Double]
}

/// What the checkpoint guards look at after a save.
struct CheckpointObservation {
    var step: Int
    var stepsDone: Int
    var checkpoint: String
    var feedback: CheckpointFeedback?
    /// ‖ΔW‖/‖W‖ of the LoRA weights (nil for full fine-tuning), computed only when a guard asks.
    var relativeDelta: () -> Double?
}

extension GuardSettings {
    /// The configured guards, in the order they are checked (the first that trips stops the run).
    public var rules: [GuardRule] {
        var rules: [GuardRule] = []
        if nonFinite { rules.append(.nonFinite) }
        if let maxMargin { rules.append(.maxMargin(maxMargin)) }
        if let minLoss { rules.append(.minLoss(floor: minLoss, withinSteps: earlyWindowSteps)) }
        if repetition { rules.append(.repetition) }
        if let noLearningAfterSteps { rules.append(.noLearning(afterSteps: noLearningAfterSteps, below: noLearningBelow)) }
        return rules
    }
}

extension GuardRule {
    /// Step guards: on the step's own numbers, before anything is saved.
    func check(_ step: StepObservation) -> GuardTrip? {
        switch self {
        case .nonFinite:
            guard !step.loss.isFinite || !step.gradientNorm.isFinite else { return nil }
            return GuardTrip(guardName: guardName, step: step.step, checkpoint: nil, value: step.loss, threshold: nil,
                             reason: "loss \(step.loss), gradient norm \(step.gradientNorm); nothing was saved from this step")
        case .maxMargin(let bound):
            guard let margin = step.metrics[.rewardsMargins], margin > bound else { return nil }
            return GuardTrip(guardName: guardName, step: step.step, checkpoint: nil, value: margin, threshold: bound,
                             reason: String(format: "reward margin %.3f exceeds %.3g (margin explosion)", margin, bound))
        case let .minLoss(floor, withinSteps):
            guard step.stepsDone <= withinSteps, step.loss < floor else { return nil }
            return GuardTrip(guardName: guardName, step: step.step, checkpoint: nil, value: step.loss, threshold: floor,
                             reason: String(format: "loss %.5f fell below %.3g within the first %d steps: the run found a shortcut (likely a collapsing or exploding update)", step.loss, floor, withinSteps))
        case .repetition, .noLearning:
            return nil
        }
    }

    /// Checkpoint guards: on a saved checkpoint and its evaluation.
    func check(_ saved: CheckpointObservation) -> GuardTrip? {
        switch self {
        case .repetition:
            guard let evidence = saved.feedback?.repetition else { return nil }
            return GuardTrip(guardName: guardName, step: saved.step, checkpoint: saved.checkpoint, value: nil, threshold: nil,
                             reason: "the checkpoint's answers collapse into repetition: \(evidence)")
        case let .noLearning(afterSteps, below):
            guard saved.stepsDone >= afterSteps, let relative = saved.relativeDelta(), relative < below else { return nil }
            return GuardTrip(guardName: guardName, step: saved.step, checkpoint: saved.checkpoint, value: relative, threshold: below,
                             reason: String(format: "after %d steps the weights moved by %.2e relative (below %.0e): the learning rate is too low or the data carries no signal", saved.stepsDone, relative, below))
        case .nonFinite, .maxMargin, .minLoss:
            return nil
        }
    }
}
