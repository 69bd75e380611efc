import Foundation

/// Writes a complete model folder (weights + the base folder's config, tokenizer and other files), built beside its
/// final name and renamed into place.
public enum ModelFolderWriter {
    public static func write(folder: URL, baseFolder: URL, tensors: [TensorToWrite], metadata: [String: String]? = nil, replacing: Bool) throws {
        try AtomicWrite.writeDirectory(at: folder, replacing: replacing) { staging in
            try SafeTensorsWriter.write(tensors, metadata: (metadata ?? [:]).merging(["format": "pt"]) { first, _ in first },
                                        to: staging.appendingPathComponent("model.safetensors"))
            _ = try AdapterFuser.copyOtherFiles(from: baseFolder, to: staging, dtype: nil)
        }
    }
}
