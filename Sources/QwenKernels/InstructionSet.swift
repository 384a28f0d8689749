// Which kernels run: chosen at run time from what the CPU reports (CQwenKernels.h).

import CQwenKernels

/// An instruction-set level of the C kernels.
public enum InstructionSet: Int32, Sendable, CaseIterable, CustomStringConvertible {
    /// The architecture's baseline (SSE2 on x86-64).
    case generic = 0
    /// AVX2, FMA and F16C: the panel kernels on `vpmaddubsw`/`vpmaddwd`.
    case avx2 = 1
    /// AVX-512 F/BW/VL/DQ with VNNI: the panel kernels on `vpdpbusd`, 16 rows per register.
    case avx512 = 2
    /// arm64 NEON with the dot-product instructions (FEAT_DotProd): the panel kernels on `sdot`.
    case dotprod = 3

    /// The best level this CPU and its operating system support.
    public static var supported: InstructionSet { InstructionSet(rawValue: qk_isa_supported()) ?? .generic }

    /// The level in use: `supported`, lowered by the environment variable `QWENKIT_ISA` if set.
    public static var active: InstructionSet { InstructionSet(rawValue: qk_isa_active()) ?? .generic }

    /// Every level this CPU can run, lowest first.
    public static var available: [InstructionSet] { allCases.filter { qk_isa_available($0.rawValue) != 0 } }

    /// Switches every kernel to `level` (tests, benchmarks); false if the CPU lacks it. Weights
    /// packed into panels while a level with panels was active must not be used after switching
    /// to one without: load models after switching.
    @discardableResult
    public static func select(_ level: InstructionSet) -> Bool { qk_isa_select(level.rawValue) != 0 }

    public var description: String { String(cString: qk_isa_name(rawValue)) }
}
