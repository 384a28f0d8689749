#if canImport(Darwin)
import Darwin
#endif
import Foundation

/// Facts about the CPU the engine runs on.
public enum CPU {
    /// Threads to compute with by default: every core the process may use, except on Apple
    /// silicon, where the efficiency cores would hold the performance cores back at every
    /// barrier, so only the performance cores (`hw.perflevel0.physicalcpu`; not verified here).
    public static var defaultThreads: Int {
        #if canImport(Darwin)
        var cores: Int32 = 0
        var size = MemoryLayout<Int32>.size
        if sysctlbyname("hw.perflevel0.physicalcpu", &cores, &size, nil, 0) == 0, cores > 0 {
            return Int(cores)
        }
        #endif
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }
}
