import Foundation

// Two builds of one program:
//
// - `scripts/fuzz.sh` builds it with `-sanitize=fuzzer,address -DQWENKIT_FUZZ`: libFuzzer drives
//   the target named by QWENKIT_FUZZ_TARGET and takes libFuzzer's flags
//   (`QWENKIT_FUZZ_TARGET=json qwenkit-fuzz -max_total_time=60 corpus/`).
// - The plain build (what `swift build` makes) replays inputs, so a crash input can be rerun
//   without the sanitizer toolchain: `qwenkit-fuzz json Tests/fuzz/crashes/json`.

#if QWENKIT_FUZZ
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

// Whichever `main` the linker keeps (SwiftPM's, which is this file, or libFuzzer's own), libFuzzer
// ends up calling the same entry point.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.selected.run(data.map { Data(bytes: $0, count: size) } ?? Data())
    return 0
}

// Before the first input, so that loading the Qwen tokenizer (seconds under ASan) is not timed.
@_cdecl("LLVMFuzzerInitialize")
func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    FuzzTarget.selected.prepare()
    return 0
}

var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzTestOneInput(data, size) })
#else
let arguments = CommandLine.arguments.dropFirst()
guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
    let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")
    FileHandle.standardError.write(Data("usage: qwenkit-fuzz \(names) FILE_OR_DIRECTORY...\n".utf8))
    exit(2)
}
var count = 0
target.prepare()
for path in arguments.dropFirst() {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        FileHandle.standardError.write(Data("qwenkit-fuzz: no such file: \(path)\n".utf8))
        exit(2)
    }
    let files = isDirectory.boolValue
        ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { "\(path)/\($0)" }
        : [path]
    for file in files {
        guard let data = FileManager.default.contents(atPath: file) else { continue }
        target.run(data)
        count += 1
    }
}
print("qwenkit-fuzz \(target.rawValue): \(count) inputs replayed, no crash")
#endif
