import Testing
import TunecheckEngine

/// The names trainers give checkpoints, made and read in one place.
@Suite struct CheckpointNameTests {
    @Test func namesRoundTrip() {
        let names: [CheckpointName] = [.numberedAdapter(step: 100), .numberedModel(step: 7), .trainerFolder(step: 500), .latestAdapter, .latestModel,
                                       .numberedAdapter(step: 12_345_678)]
        for name in names {
            #expect(CheckpointName(fileName: name.fileName) == name, "\(name.fileName)")
        }
        #expect(CheckpointName.numberedAdapter(step: 100).fileName == "0000100_adapters.safetensors")
        #expect(CheckpointName.numberedAdapter(step: 100).displayName == "0000100_adapters")
        #expect(CheckpointName.numberedModel(step: 7).fileName == "0000007_model")
        #expect(CheckpointName.trainerFolder(step: 500).fileName == "checkpoint-500")
        #expect(CheckpointName.numberedAdapter(step: 12_345_678).fileName == "12345678_adapters.safetensors")
    }

    @Test func stepsAreReadFromEveryKindOfName() {
        #expect(CheckpointName.step(in: "0000100_adapters") == 100)
        #expect(CheckpointName.step(in: "0000100_adapters.safetensors") == 100)
        #expect(CheckpointName.step(in: "0000005_model") == 5)
        #expect(CheckpointName.step(in: "checkpoint-500") == 500)
        #expect(CheckpointName.step(in: "adapters.safetensors") == nil)
        #expect(CheckpointName(fileName: "adapters.safetensors")?.isNumbered == false)
    }

    @Test(arguments: ["checkpoint-", "checkpoint-x", "checkpoint-5a", "0000100_adapter.safetensors", "_adapters.safetensors",
                      "0000100_adapters.bin", "0000100_model.safetensors", "model.safetensors", "９_adapters", "99999999999999999999_model"])
    func otherNamesAreNotCheckpoints(_ name: String) {
        #expect(CheckpointName(fileName: name) == nil)
    }
}
