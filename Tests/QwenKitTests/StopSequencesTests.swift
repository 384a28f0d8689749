import XCTest
@testable import QwenKit

final class StopSequencesTests: XCTestCase {
    /// Feeds the chunks and returns everything printed (including `finish()`) and whether it stopped.
    func run(_ stops: [String], _ chunks: [String]) -> (String, Bool, [String]) {
        var matcher = StopSequenceMatcher(stops: stops)
        var printed = ""
        var pieces: [String] = []
        var stopped = false
        for chunk in chunks {
            let out = matcher.feed(chunk)
            printed += out.text
            pieces.append(out.text)
            if out.stopped { stopped = true; break }
        }
        if !stopped { printed += matcher.finish() }
        return (printed, stopped, pieces)
    }

    func testNoStopsPassesThrough() {
        let (text, stopped, pieces) = run([], ["Hel", "lo", " world"])
        XCTAssertEqual(text, "Hello world")
        XCTAssertFalse(stopped)
        XCTAssertEqual(pieces, ["Hel", "lo", " world"])
    }

    func testStopInsideOneChunk() {
        let (text, stopped, _) = run(["STOP"], ["abcSTOPdef"])
        XCTAssertEqual(text, "abc")
        XCTAssertTrue(stopped)
    }

    func testStopSplitAcrossChunksIsHeldBack() {
        var matcher = StopSequenceMatcher(stops: ["</end>"])
        XCTAssertEqual(matcher.feed("Hello </"), .init(text: "Hello ", stopped: false))
        XCTAssertEqual(matcher.feed("en"), .init(text: "", stopped: false))
        XCTAssertEqual(matcher.feed("d> trailing"), .init(text: "", stopped: true))
        XCTAssertEqual(matcher.feed("more"), .init(text: "", stopped: true))
        XCTAssertEqual(matcher.finish(), "")
    }

    func testFalseStartIsReleased() {
        var matcher = StopSequenceMatcher(stops: ["</end>"])
        XCTAssertEqual(matcher.feed("a </e"), .init(text: "a ", stopped: false))
        XCTAssertEqual(matcher.feed("x"), .init(text: "</ex", stopped: false))
        XCTAssertEqual(matcher.feed("</"), .init(text: "", stopped: false))
        XCTAssertEqual(matcher.finish(), "</")
    }

    func testOverlappingPrefixes() {
        // "aab" must be found even though the first "a" starts a failed attempt at "aab".
        XCTAssertEqual(run(["aab"], ["a", "a", "a", "b", "c"]).0, "a")
        XCTAssertEqual(run(["aab"], ["aaab"]).0, "a")
        // Self-overlapping stop "abab" in "ababab..."
        let (text, stopped, _) = run(["abab"], ["xab", "a", "b"])
        XCTAssertEqual(text, "x")
        XCTAssertTrue(stopped)
    }

    func testMultipleStops() {
        XCTAssertEqual(run(["\n\n", "User:"], ["Answer.", "\n", "\nUser: hi"]).0, "Answer.")
        XCTAssertEqual(run(["\n\n", "User:"], ["Answer. Us", "er: hi\n\n"]).0, "Answer. ")
        // Holding back is decided by the longest possible continuation among all stops.
        var matcher = StopSequenceMatcher(stops: ["xyz", "yq"])
        XCTAssertEqual(matcher.feed("axy"), .init(text: "a", stopped: false))
        XCTAssertEqual(matcher.feed("q"), .init(text: "x", stopped: true))
    }

    func testNonASCIIAndEmptyStops() {
        XCTAssertEqual(run(["", "。"], ["你好", "世界。", "再见"]).0, "你好世界")
        let (text, stopped, pieces) = run(["🙂"], ["ok ", "🙂"])
        XCTAssertEqual(text, "ok ")
        XCTAssertTrue(stopped)
        XCTAssertEqual(pieces, ["ok ", ""])
    }
}
