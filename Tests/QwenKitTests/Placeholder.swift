import XCTest
final class QwenKitTestsPlaceholder: XCTestCase { func testBuilds() {} }
