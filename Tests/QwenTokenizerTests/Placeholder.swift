import XCTest
final class QwenTokenizerTestsPlaceholder: XCTestCase { func testBuilds() {} }
