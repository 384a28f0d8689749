import XCTest
final class QwenKernelsTestsPlaceholder: XCTestCase { func testBuilds() {} }
