import XCTest
@testable import QwenServer

/// The API key is compared in constant time; here, that the comparison is still exact.
final class APIKeyComparisonTests: XCTestCase {
    func testConstantTimeEqualIsExact() {
        let key = Array("Bearer sk-test-123".utf8)
        XCTAssertTrue(constantTimeEqual(key, key))
        XCTAssertFalse(constantTimeEqual(Array("Bearer sk-test-12".utf8), key))      // a prefix
        XCTAssertFalse(constantTimeEqual(Array("Bearer sk-test-1234".utf8), key))    // longer
        XCTAssertFalse(constantTimeEqual(Array("Bearer sk-test-124".utf8), key))     // last byte differs
        XCTAssertFalse(constantTimeEqual([], key))
        XCTAssertTrue(constantTimeEqual([], []))
        // Lengths 256 apart must not wrap around to "equal".
        XCTAssertFalse(constantTimeEqual(key + [UInt8](repeating: 0, count: 256), key))
    }
}
