import Foundation
import QwenAgent
import QwenKit
import XCTest

final class TravelStoreTests: XCTestCase {
    func testSeedingIsDeterministicAndSized() throws {
        let a = try TravelStore(), b = try TravelStore()
        XCTAssertEqual(try a.catalogueFingerprint(), try b.catalogueFingerprint())
        let counts = try a.query("""
            SELECT (SELECT count(*) FROM flights) AS flights, (SELECT count(*) FROM hotels) AS hotels,
                   (SELECT count(*) FROM products) AS products
            """)[0]
        let total = (counts["flights"]?.intValue ?? 0) + (counts["hotels"]?.intValue ?? 0) + (counts["products"]?.intValue ?? 0)
        XCTAssertGreaterThan(total, 2000, "\(counts)")
        XCTAssertGreaterThan(counts["flights"]?.intValue ?? 0, 1000)
        // The first rows, pinned so that a change to the generator is noticed.
        let first = try a.query("SELECT id, origin, destination FROM flights ORDER BY rowid LIMIT 1")
        XCTAssertEqual(first, [["id": "QK100", "origin": "Paris", "destination": "Tokyo"]])
    }

    func testSeatCannotBeBookedTwice() throws {
        let store = try TravelStore()
        _ = try store.bookFlight("QK100", seat: "12A")
        XCTAssertThrowsError(try store.bookFlight("qk100", seat: "12a")) { error in
            XCTAssertEqual("\(error)", "booking QK100 was refused: the seat is already booked on this flight")
        }
        // The database itself refuses it, whatever code writes.
        XCTAssertThrowsError(try store.execute("""
            INSERT INTO bookings (kind, flight_id, seat, price_eur, created_at) VALUES ('flight', 'QK100', '12A', 1, 'now')
            """))
        XCTAssertEqual(try store.query("SELECT count(*) AS n FROM bookings"), [["n": 1]])
        // After a cancellation the seat is free again.
        _ = try store.cancelBooking(1)
        XCTAssertNoThrow(try store.bookFlight("QK100", seat: "12A"))
    }

    func testFullFlightIsRefused() throws {
        let store = try TravelStore()
        try store.execute("UPDATE flights SET seats = 2 WHERE id = 'QK101'")
        _ = try store.bookFlight("QK101")
        _ = try store.bookFlight("QK101")
        XCTAssertThrowsError(try store.bookFlight("QK101")) { error in
            XCTAssertEqual("\(error)", "booking QK101 was refused: the flight is full")
        }
    }

    func testStockIsNeverExceeded() throws {
        let store = try TravelStore()
        try store.execute("UPDATE products SET stock = 3 WHERE id = 'P0001'")
        _ = try store.addToCart("P0001", quantity: 2)
        XCTAssertThrowsError(try store.addToCart("P0001", quantity: 2)) { error in
            XCTAssertEqual("\(error)", "adding 2 × P0001 to the cart was refused: not enough stock")
        }
        XCTAssertEqual(try store.query("SELECT quantity FROM cart_items"), [["quantity": 2]])
        // Stock sold elsewhere meanwhile: checkout is all or nothing.
        _ = try store.addToCart("P0002", quantity: 1)
        try store.execute("UPDATE products SET stock = 1 WHERE id = 'P0001'")
        XCTAssertThrowsError(try store.checkout()) { error in
            XCTAssertEqual("\(error)", "checkout was refused: not enough stock")
        }
        XCTAssertEqual(try store.query("SELECT count(*) AS n FROM orders"), [["n": 0]])
        XCTAssertEqual(try store.query("SELECT count(*) AS n FROM cart_items"), [["n": 2]])
        try store.execute("UPDATE products SET stock = 5 WHERE id = 'P0001'")
        let order = try store.checkout()
        XCTAssertEqual(order["order_id"], 1)
        XCTAssertEqual(try store.query("SELECT stock FROM products WHERE id = 'P0001'"), [["stock": 3]])
        XCTAssertEqual(try store.query("SELECT count(*) AS n FROM cart_items"), [["n": 0]])
    }

    func testHotelRoomsAndCityNames() throws {
        let store = try TravelStore()
        XCTAssertEqual(TravelStore.city(named: "Hà Nội"), "Hanoi")
        XCTAssertEqual(TravelStore.city(named: "巴黎"), "Paris")
        XCTAssertEqual(TravelStore.city(named: "cdg"), "Paris")
        XCTAssertEqual(TravelStore.city(named: "Sài Gòn"), "Ho Chi Minh City")
        XCTAssertNil(TravelStore.city(named: "Atlantis"))
        try store.execute("UPDATE hotels SET rooms = 1 WHERE id = 'H0001'")
        _ = try store.bookHotel("H0001", checkIn: "2026-12-20", nights: 3)
        XCTAssertThrowsError(try store.bookHotel("H0001", checkIn: "2026-12-22", nights: 1))
        XCTAssertNoThrow(try store.bookHotel("H0001", checkIn: "2026-12-23", nights: 2))
        let products = try store.searchProducts(query: "耳机", maxPrice: nil)
        XCTAssertEqual(products["products"]?[0]?["category"], "headphones")
        XCTAssertThrowsError(try store.searchFlights(origin: "Atlantis", destination: "Paris", date: nil))
    }
}
