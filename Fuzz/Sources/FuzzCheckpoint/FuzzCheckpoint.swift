import FuzzSupport
import MLPKit

/// Fuzzes `Checkpoint.decode` (safetensors): it must throw or return a checkpoint whose
/// parameters fit its layer sizes and are finite, and which survives an encode/decode round trip.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpoint(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Fuzz.bytes(data, size)
    guard let checkpoint = try? Checkpoint.decode(bytes) else { return 0 }
    let sizes = checkpoint.layerSizes
    Fuzz.check(sizes.count >= 2 && sizes.allSatisfy { $0 >= 1 }, "layer sizes \(sizes)")
    var expected = 0
    for i in 1..<sizes.count { expected += sizes[i] * sizes[i - 1] + sizes[i] }
    Fuzz.check(checkpoint.parameters.count == expected, "\(checkpoint.parameters.count) parameters for \(sizes)")
    Fuzz.check(checkpoint.parameters.count * 4 <= bytes.count, "more parameters than the file holds")
    Fuzz.check(checkpoint.parameters.allSatisfy(\.isFinite), "a parameter is not finite")
    if let optimizer = checkpoint.optimizer {
        Fuzz.check(optimizer.firstMoment.count == expected && optimizer.secondMoment.count == expected,
                   "Adam state does not fit the model")
        Fuzz.check(optimizer.step >= 0, "negative Adam step")
    }
    // Writing it back and reading that must give the same checkpoint (NaN hyperparameters aside,
    // which compare unequal to themselves).
    guard let encoded = try? checkpoint.encoded() else {
        Fuzz.check(false, "a decoded checkpoint cannot be encoded")
        return 0
    }
    guard let again = try? Checkpoint.decode(encoded) else {
        Fuzz.check(false, "an encoded checkpoint does not decode")
        return 0
    }
    Fuzz.check(again.layerSizes == checkpoint.layerSizes && again.parameters == checkpoint.parameters
               && again.activation == checkpoint.activation && again.loss == checkpoint.loss
               && again.metadata == checkpoint.metadata,
               "the round trip changed the checkpoint")
    Fuzz.check(again.optimizer?.step == checkpoint.optimizer?.step, "the round trip changed Adam's step")
    if let h = checkpoint.hyperparameters, [h.learningRate, h.beta1, h.beta2, h.epsilon].allSatisfy({ !$0.isNaN }) {
        Fuzz.check(again.hyperparameters == checkpoint.hyperparameters, "the round trip changed the hyperparameters")
    }
    return 0
}
