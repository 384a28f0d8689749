import Foundation
import XCTest
@testable import QwenKit

/// Hostile chat templates (they come from model files): each renders correctly or ends in one
/// ``JinjaError`` naming its line, never a trap, a huge allocation or a hang. Before the fixes,
/// the overflow cases trapped, `[] * huge` crashed, `'' * huge` never ended, and the
/// self-sharing and quadratic cases ran for minutes.
final class JinjaHostileTests: XCTestCase {
    private func render(_ source: String, steps: Int = JinjaBudget.defaultSteps) throws -> String {
        try JinjaTemplate(source).render([:], steps: steps)
    }

    private func assertError(_ source: String, line: Int = 1, mentioning needle: String?, steps: Int = JinjaBudget.defaultSteps,
                             file: StaticString = #filePath, callLine: UInt = #line) {
        XCTAssertThrowsError(try render(source, steps: steps), file: file, line: callLine) { error in
            guard let error = error as? JinjaError else { return XCTFail("\(error)", file: file, line: callLine) }
            XCTAssertEqual(error.line, line, "\(error)", file: file, line: callLine)
            if let needle {
                XCTAssertTrue(error.message.contains(needle), "'\(error.message)' does not mention '\(needle)'",
                              file: file, line: callLine)
            }
        }
    }

    // MARK: Checked arithmetic

    func testRangeWithExtremeBounds() throws {
        assertError("{{ range(-9223372036854775807, 9223372036854775807) }}", mentioning: "range too big")
        assertError("{{ range(9223372036854775807, -9223372036854775807 - 1, -1) }}", mentioning: "range too big")
        XCTAssertEqual(try render("{{ range(0, 10, -9223372036854775807 - 1) | list }}"), "[]")
        XCTAssertEqual(try render("{{ range(-9223372036854775807 - 1, 9223372036854775807, 4611686018427387904) | list }}"),
                       "[-9223372036854775808, -4611686018427387904, 0, 4611686018427387904]")
    }

    func testSliceWithExtremeSteps() throws {
        XCTAssertEqual(try render("{{ [1, 2, 3][::9223372036854775807] }}"), "[1]")
        XCTAssertEqual(try render("{{ [1, 2, 3][::-9223372036854775807 - 1] }}"), "[3]")
        XCTAssertEqual(try render("{{ 'abc'[1::9223372036854775807] }}"), "b")
    }

    func testDivisibleByMinusOne() throws {
        XCTAssertEqual(try render("{{ (-9223372036854775807 - 1) is divisibleby(-1) }}"), "True")
    }

    func testIntWithBadBase() throws {
        assertError("\n{{ '10' | int(0, 99) }}", line: 2, mentioning: "base")
        assertError("{{ '10' | int(0, 1) }}", mentioning: "base")
        XCTAssertEqual(try render("{{ 'ff' | int(0, 16) }}"), "255")
    }

    // MARK: Repetition and sizes checked before building

    func testRepeatingEmptyValuesHugeTimes() throws {
        XCTAssertEqual(try render("{{ [] * 9223372036854775807 }}"), "[]")
        XCTAssertEqual(try render("{{ ('' * 9223372036854775807) | length }}"), "0")
        XCTAssertEqual(try render("{{ 9223372036854775807 * [] }}"), "[]")
        assertError("{{ [1] * 9223372036854775807 }}", mentioning: "too large")
        assertError("{{ 'ab' * 9223372036854775807 }}", mentioning: "too large")
    }

    func testSizesCheckedBeforeBuilding() throws {
        let big = "{% set s = 'x' * 10000000 %}"
        assertError(big + "{{ s ~ s }}", mentioning: "longer than")
        assertError(big + "{{ s + s }}", mentioning: "longer than")
        assertError(big + "{{ [s, s] | join }}", mentioning: "longer than")
        assertError(big + "{{ ''.join([s, s]) }}", mentioning: "longer than")
        assertError(big + "{{ '{}{}'.format(s, s) }}", mentioning: "longer than")
        assertError("{{ ('\\n' * 1000000) | indent(100) }}", mentioning: "longer than")
        assertError("{{ [1, 2] | batch(9223372036854775807, 0) }}", mentioning: "collection")
        assertError(big + "{{ [s, s] | tojson }}", mentioning: "longer than")
    }

    // MARK: Bounded work

    /// A list holding the previous one twice, 64 times over: 2^64 elements when printed.
    private let selfSharing = """
    {% set ns = namespace(a=[1], b=[1]) %}
    {% for i in range(64) %}{% set ns.a = [ns.a, ns.a] %}{% set ns.b = [ns.b, ns.b] %}{% endfor %}

    """

    func testSelfSharingListsPrintedComparedSerialised() throws {
        assertError(selfSharing + "{{ ns.a }}", line: 3, mentioning: nil, steps: 1_000_000)
        assertError(selfSharing + "{{ ns.a == ns.b }}", line: 3, mentioning: "steps", steps: 1_000_000)
        assertError(selfSharing + "{{ ns.a < ns.b }}", line: 3, mentioning: "steps", steps: 1_000_000)
        assertError(selfSharing + "{{ ns.a | tojson }}", line: 3, mentioning: nil, steps: 1_000_000)
        assertError(selfSharing + "{{ ns.a in [ns.b] }}", line: 3, mentioning: "steps", steps: 1_000_000)
    }

    func testQuadraticUniqueHitsTheBudget() throws {
        assertError("{{ range(100000) | unique | list | length }}", mentioning: "steps", steps: 1_000_000)
    }

    func testExponentialMacroRecursionHitsTheBudget() throws {
        let source = "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}\n{{ f(38) }}"
        XCTAssertThrowsError(try render(source, steps: 1_000_000)) { error in
            XCTAssertTrue("\(error)".contains("steps"), "\(error)")
        }
    }

    /// `aaa…a` searched for `aaa…ab`: a naive search compares ~n·m scalars; this one scans each once.
    func testSubstringSearchIsLinear() throws {
        let source = "{% set hay = 'a' * 1000000 %}{% set needle = 'a' * 5000 ~ 'b' %}"
            + "{{ needle in hay }} {{ hay.find(needle) }} {{ hay.rfind(needle) }} {{ hay.count(needle) }} {{ (hay ~ 'b').find(needle) }}"
        XCTAssertEqual(try render(source, steps: 20_000_000), "False -1 -1 0 995000")
        XCTAssertEqual(try render("{{ 'abcabc'.rfind('bc') }} {{ 'abcabc'.rindex('abc') }} {{ 'abc'.rfind('') }}"), "4 3 3")
    }

    // MARK: Through the binary

    static let slowTemplate = "{% set s = 'x' * 8000000 %}{% for i in range(1000000) %}{% set t = s ~ s %}{% endfor %}"

    /// A GGUF whose chat template would run for hours: `qwenkit run` ends with one error line.
    func testHostileTemplateInGGUFDoesNotHangRun() throws {
        var gguf = try GGUFRewrite(path: Fixtures.url("models/tiny-qwen2/tiny-qwen2-f32.gguf").path)
        // Every iteration copies 16 MB; without a budget this runs for an hour.
        gguf.set("tokenizer.chat_template", .string(Self.slowTemplate))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qwenkit-template-\(UUID().uuidString).gguf")
        try gguf.data().write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let output = try QwenKitBinary.run(["run", "-m", url.path, "--max-tokens", "1", "hi"], timeout: 300)
        XCTAssertFalse(output.timedOut, "hung on the template")
        XCTAssertFalse(output.crashed, output.stderr)
        XCTAssertNotEqual(output.status, 0)
        XCTAssertTrue(output.stderr.contains("template"), output.stderr)
    }

    /// The same template in a Hugging Face directory's tokenizer_config.json.
    func testHostileTemplateInTokenizerConfigDoesNotHangRun() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qwenkit-template-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: Fixtures.url("models/tiny-qwen2"), to: folder)
        defer { try? FileManager.default.removeItem(at: folder) }
        let configURL = folder.appendingPathComponent("tokenizer_config.json")
        var config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any])
        config["chat_template"] = Self.slowTemplate
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        let output = try QwenKitBinary.run(["run", "-m", folder.path, "--max-tokens", "1", "hi"], timeout: 300)
        XCTAssertFalse(output.timedOut, "hung on the template")
        XCTAssertFalse(output.crashed, output.stderr)
        XCTAssertNotEqual(output.status, 0)
        XCTAssertTrue(output.stderr.contains("template"), output.stderr)
    }
}
