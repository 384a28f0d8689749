import Foundation
import GRDB
import QwenKit

/// The demo domain's reads and writes, each returning the JSON a tool hands to the model.
/// Writes run in one transaction; what the database refuses comes back as a ``ToolError``.
extension TravelStore {
    /// The canonical city name for what a user wrote ("巴黎", "Hà Nội", "cdg", "paris").
    public static func city(named text: String) -> String? {
        let key = foldedName(text)
        guard !key.isEmpty else { return nil }
        for city in DemoWorld.cities {
            if foldedName(city.name) == key || city.airport.lowercased() == key
                || city.aliases.contains(where: { foldedName($0) == key }) {
                return city.name
            }
        }
        return nil
    }

    func requireCity(_ text: String) throws -> String {
        guard let name = Self.city(named: text) else {
            throw ToolError("unknown city '\(text)'; known cities: " + DemoWorld.cities.map(\.name).joined(separator: ", "))
        }
        return name
    }

    static func requireDate(_ text: String, _ what: String) throws -> CivilDate {
        guard let date = CivilDate(text) else { throw ToolError("\(what) must be a date written YYYY-MM-DD, not '\(text)'") }
        return date
    }

    private static func now() -> String { ISO8601DateFormatter().string(from: Date()) }

    /// Runs a write transaction, turning the database's refusals into one clear line.
    private func write<T>(_ what: String, _ body: (Database) throws -> T) throws -> T {
        do {
            return try database.write(body)
        } catch let error as DatabaseError {
            throw ToolError("\(what) was refused: \(error.message ?? "database error \(error.resultCode)")")
        }
    }

    // MARK: Flights

    /// Up to five flights on the route, on `date` or the nearest days, cheapest first per day.
    public func searchFlights(origin: String, destination: String, date: String?) throws -> JSONValue {
        let from = try requireCity(origin), to = try requireCity(destination)
        let target = try date.map { try Self.requireDate($0, "date") }
        return try database.read { db in
            var rows = try Row.fetchAll(db, sql: """
                SELECT f.*, f.seats - (SELECT count(*) FROM bookings b WHERE b.kind = 'flight' AND b.flight_id = f.id
                                       AND b.status = 'active') AS seats_left
                FROM flights f WHERE origin = ? AND destination = ? ORDER BY date, price_eur
                """, arguments: [from, to])
            if let target {
                func distance(_ row: Row) -> Int {
                    let day: String = row["date"] ?? ""
                    return abs((CivilDate(day)?.dayNumber ?? 0) - target.dayNumber)
                }
                rows = rows.filter { distance($0) <= 3 }.sorted { distance($0) < distance($1) }
            }
            let flights = rows.prefix(5).map(Self.flightJSON)
            var result: [(String, JSONValue)] = [("flights", .array(flights))]
            if flights.isEmpty {
                result.append(("note", .string("no flight from \(from) to \(to)\(target.map { " near \($0)" } ?? "")")))
            } else if let target, let first = rows.first, (first["date"] as String?) != target.description {
                result.append(("note", .string("no flight on \(target); these are the nearest days")))
            }
            return .object(result)
        }
    }

    static func flightJSON(_ row: Row) -> JSONValue {
        .object([("flight_id", .string(row["id"] ?? "")), ("from", .string(row["origin"] ?? "")),
                 ("to", .string(row["destination"] ?? "")), ("date", .string(row["date"] ?? "")),
                 ("departs", .string(row["departs"] ?? "")), ("arrives", .string(row["arrives"] ?? "")),
                 ("airline", .string(row["airline"] ?? "")), ("price_eur", .int(row["price_eur"] ?? 0)),
                 ("seats_left", .int(row["seats_left"] ?? 0))])
    }

    /// "QK123 Paris→Tokyo on 2026-12-20 at 09:40 for 612 EUR", or nil for an unknown flight.
    public func flightSummary(_ id: String) -> String? {
        let row = try? database.read { db in try Row.fetchOne(db, sql: "SELECT * FROM flights WHERE id = ?", arguments: [id.uppercased()]) }
        guard let row = row ?? nil else { return nil }
        let (id, from, to, date, departs): (String?, String?, String?, String?, String?) =
            (row["id"], row["origin"], row["destination"], row["date"], row["departs"])
        let price: Int? = row["price_eur"]
        return "\(id ?? "") \(from ?? "")→\(to ?? "") on \(date ?? "") at \(departs ?? "") for \(price ?? 0) EUR"
    }

    /// Refuses a seat the flight does not have. Seats are a row number and a letter A–F, six to a
    /// row, as many rows as the flight's `seats` fill (`bookFlight` hands them out the same way).
    /// - Throws: ``ToolError`` naming the seat and the flight's range; nothing for an unknown flight
    ///   (booking it fails with its own message).
    public func checkSeat(_ seat: String, onFlight flightID: String) throws {
        let id = flightID.uppercased()
        guard let seats = try database.read({ db in
            try Int.fetchOne(db, sql: "SELECT seats FROM flights WHERE id = ?", arguments: [id])
        }) else { return }
        _ = try Self.seatNumber(seat, flight: id, seats: seats)
    }

    static func seatRows(_ seats: Int) -> Int { max(seats, 6) / 6 }

    /// The seat written the one way the database stores it ("01a" → "1A").
    static func seatNumber(_ seat: String, flight: String, seats: Int) throws -> String {
        let text = seat.uppercased(), rows = seatRows(seats)
        let digits = text.dropLast()
        guard let letter = text.last, "ABCDEF".contains(letter), !digits.isEmpty,
              digits.allSatisfy({ $0.isASCII && $0.isNumber }), let row = Int(digits), (1...rows).contains(row) else {
            throw ToolError("flight \(flight) has no seat '\(TerminalText.escaped(seat))': its seats are 1A to \(rows)F")
        }
        return "\(row)\(letter)"
    }

    /// Books a seat (the first free one unless `seat` is given).
    public func bookFlight(_ flightID: String, seat requestedSeat: String? = nil) throws -> JSONValue {
        let id = flightID.uppercased()
        return try write("booking \(id)") { db in
            guard let flight = try Row.fetchOne(db, sql: "SELECT * FROM flights WHERE id = ?", arguments: [id]) else {
                throw ToolError("no flight \(id); search flights first and use a flight_id from the results")
            }
            let seats: Int = flight["seats"] ?? 0
            let taken = Set(try String.fetchAll(db, sql: """
                SELECT seat FROM bookings WHERE kind = 'flight' AND flight_id = ? AND status = 'active' AND seat IS NOT NULL
                """, arguments: [id]))
            let seat: String
            if let requestedSeat {
                seat = try Self.seatNumber(requestedSeat, flight: id, seats: seats)
            } else {
                let all = (1...Self.seatRows(seats)).flatMap { row in ["A", "B", "C", "D", "E", "F"].map { "\(row)\($0)" } }
                seat = all.first { !taken.contains($0) } ?? "1A"
            }
            let price: Int = flight["price_eur"] ?? 0
            try db.execute(sql: """
                INSERT INTO bookings (kind, flight_id, seat, price_eur, created_at) VALUES ('flight', ?, ?, ?, ?)
                """, arguments: [id, seat, price, Self.now()])
            return .object([("booking_id", .int(Int(db.lastInsertedRowID))), ("flight_id", .string(id)),
                            ("from", .string(flight["origin"] ?? "")), ("to", .string(flight["destination"] ?? "")),
                            ("date", .string(flight["date"] ?? "")), ("seat", .string(seat)), ("price_eur", .int(price))])
        }
    }

    // MARK: Hotels

    /// Up to five hotels in the city, cheapest first, with rooms free for the stay when dates are given.
    public func searchHotels(city: String, checkIn: String?, nights: Int?, maxPrice: Int?, minStars: Int?) throws -> JSONValue {
        let name = try requireCity(city)
        let start = try checkIn.map { try Self.requireDate($0, "check_in") }
        let end = start?.adding(days: max(nights ?? 1, 1))
        return try database.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT h.*, h.rooms - (SELECT count(*) FROM bookings b WHERE b.kind = 'hotel' AND b.hotel_id = h.id
                     AND b.status = 'active' AND b.check_in < ? AND ? < b.check_out) AS rooms_left
                FROM hotels h WHERE city = ? AND price_eur <= ? AND stars >= ? ORDER BY price_eur, id LIMIT 5
                """, arguments: [end?.description ?? "9999", start?.description ?? "0000", name, maxPrice ?? Int.max, minStars ?? 0])
            let hotels: [JSONValue] = rows.map { row in
                .object([("hotel_id", .string(row["id"] ?? "")), ("name", .string(row["name"] ?? "")),
                         ("city", .string(row["city"] ?? "")), ("stars", .int(row["stars"] ?? 0)),
                         ("price_per_night_eur", .int(row["price_eur"] ?? 0)), ("rooms_left", .int(row["rooms_left"] ?? 0))])
            }
            return .object([("hotels", .array(hotels))])
        }
    }

    /// "Lotus Hanoi Inn (Hanoi), 3 nights from 2026-12-22, for 171 EUR", or nil for an unknown hotel.
    public func hotelSummary(_ id: String, checkIn: String, nights: Int) -> String? {
        let row = try? database.read { db in try Row.fetchOne(db, sql: "SELECT * FROM hotels WHERE id = ?", arguments: [id.uppercased()]) }
        guard let row = row ?? nil else { return nil }
        let (name, city): (String?, String?) = (row["name"], row["city"])
        let price: Int = row["price_eur"] ?? 0
        return "\(name ?? id) (\(city ?? "")), \(nights) night\(nights == 1 ? "" : "s") from \(checkIn), for \(price * nights) EUR"
    }

    /// Books one room for `nights` nights from `checkIn`.
    public func bookHotel(_ hotelID: String, checkIn: String, nights: Int) throws -> JSONValue {
        let id = hotelID.uppercased()
        let start = try Self.requireDate(checkIn, "check_in")
        guard nights >= 1 else { throw ToolError("nights must be at least 1") }
        return try write("booking hotel \(id)") { db in
            guard let hotel = try Row.fetchOne(db, sql: "SELECT * FROM hotels WHERE id = ?", arguments: [id]) else {
                throw ToolError("no hotel \(id); search hotels first and use a hotel_id from the results")
            }
            let price = (hotel["price_eur"] ?? 0) * nights
            let end = start.adding(days: nights)
            try db.execute(sql: """
                INSERT INTO bookings (kind, hotel_id, check_in, check_out, price_eur, created_at) VALUES ('hotel', ?, ?, ?, ?, ?)
                """, arguments: [id, start.description, end.description, price, Self.now()])
            return .object([("booking_id", .int(Int(db.lastInsertedRowID))), ("hotel_id", .string(id)),
                            ("hotel", .string(hotel["name"] ?? "")), ("check_in", .string(start.description)),
                            ("check_out", .string(end.description)), ("price_eur", .int(price))])
        }
    }

    // MARK: Bookings

    /// Every booking, newest first.
    public func listBookings() throws -> JSONValue {
        try database.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT b.*, f.origin, f.destination, f.date, h.name AS hotel_name, h.city
                FROM bookings b LEFT JOIN flights f ON f.id = b.flight_id LEFT JOIN hotels h ON h.id = b.hotel_id
                ORDER BY b.id DESC
                """)
            return .object([("bookings", .array(rows.map(Self.bookingJSON)))])
        }
    }

    static func bookingJSON(_ row: Row) -> JSONValue {
        var members: [(String, JSONValue)] = [("booking_id", .int(row["id"] ?? 0)), ("kind", .string(row["kind"] ?? "")),
                                              ("status", .string(row["status"] ?? ""))]
        if let flight: String = row["flight_id"] {
            members += [("flight_id", .string(flight)), ("from", .string(row["origin"] ?? "")), ("to", .string(row["destination"] ?? "")),
                        ("date", .string(row["date"] ?? "")), ("seat", .string(row["seat"] ?? ""))]
        }
        if let hotel: String = row["hotel_id"] {
            members += [("hotel_id", .string(hotel)), ("hotel", .string(row["hotel_name"] ?? "")),
                        ("check_in", .string(row["check_in"] ?? "")), ("check_out", .string(row["check_out"] ?? ""))]
        }
        members.append(("price_eur", .int(row["price_eur"] ?? 0)))
        return .object(members)
    }

    /// "booking 3: flight QK123 Paris→Tokyo on 2026-12-20, seat 1A", or nil when there is no such booking.
    public func bookingSummary(_ id: Int) -> String? {
        let row = try? database.read { db in
            try Row.fetchOne(db, sql: """
                SELECT b.*, f.origin, f.destination, f.date, h.name AS hotel_name FROM bookings b
                LEFT JOIN flights f ON f.id = b.flight_id LEFT JOIN hotels h ON h.id = b.hotel_id WHERE b.id = ?
                """, arguments: [id])
        }
        guard let row = row ?? nil else { return nil }
        if let flight: String = row["flight_id"] {
            let (from, to, date, seat): (String?, String?, String?, String?) = (row["origin"], row["destination"], row["date"], row["seat"])
            return "booking \(id): flight \(flight) \(from ?? "")→\(to ?? "") on \(date ?? ""), seat \(seat ?? "")"
        }
        let (hotel, checkIn): (String?, String?) = (row["hotel_name"], row["check_in"])
        return "booking \(id): \(hotel ?? "hotel") from \(checkIn ?? "")"
    }

    /// Cancels an active booking.
    public func cancelBooking(_ id: Int) throws -> JSONValue {
        try write("cancelling booking \(id)") { db in
            guard let status = try String.fetchOne(db, sql: "SELECT status FROM bookings WHERE id = ?", arguments: [id]) else {
                throw ToolError("there is no booking \(id); list_bookings shows the booking ids")
            }
            guard status == "active" else { throw ToolError("booking \(id) is already cancelled") }
            try db.execute(sql: "UPDATE bookings SET status = 'cancelled' WHERE id = ?", arguments: [id])
            return .object([("booking_id", .int(id)), ("status", "cancelled")])
        }
    }

    // MARK: Shopping

    /// Up to five products in stock matching every word of `query` (name, brand or category, in
    /// several languages), cheapest first.
    public func searchProducts(query: String, maxPrice: Int?) throws -> JSONValue {
        var text = query.lowercased()
        var categories: [String] = []
        // Category words in any language, longest first so "笔记本电脑" wins over "电脑".
        let aliases = DemoWorld.categories.flatMap { category in ([category.name] + category.aliases).map { ($0.lowercased(), category.name) } }
        for (alias, category) in aliases.sorted(by: { $0.0.count > $1.0.count }) where text.contains(alias) {
            if !categories.contains(category) { categories.append(category) }
            text = text.replacingOccurrences(of: alias, with: " ")
        }
        let words = text.split(whereSeparator: { $0.isWhitespace || $0.isPunctuation }).map(String.init)
            .filter { $0.count > 1 && !["a", "an", "the", "some", "for", "under", "eur", "euros"].contains($0) }
        return try database.read { db in
            var sql = "SELECT * FROM products WHERE stock > 0 AND price_eur <= ?"
            var arguments: StatementArguments = [maxPrice ?? Int.max]
            if !categories.isEmpty {
                sql += " AND category IN (\(categories.map { _ in "?" }.joined(separator: ", ")))"
                _ = arguments.append(contentsOf: StatementArguments(categories))
            }
            for word in words {
                sql += " AND (lower(name) LIKE ? OR lower(brand) LIKE ? OR category LIKE ? OR lower(id) = ?)"
                _ = arguments.append(contentsOf: ["%\(word)%", "%\(word)%", "%\(word)%", word])
            }
            sql += " ORDER BY price_eur, id LIMIT 5"
            let rows = try Row.fetchAll(db, sql: sql, arguments: arguments)
            let products: [JSONValue] = rows.map { row in
                .object([("product_id", .string(row["id"] ?? "")), ("name", .string(row["name"] ?? "")),
                         ("category", .string(row["category"] ?? "")), ("price_eur", .int(row["price_eur"] ?? 0)),
                         ("stock", .int(row["stock"] ?? 0))])
            }
            return .object([("products", .array(products))])
        }
    }

    /// "Lumen Pro Headphones (P0042, 59 EUR)", or nil for an unknown product.
    public func productSummary(_ id: String) -> String? {
        let row = try? database.read { db in try Row.fetchOne(db, sql: "SELECT * FROM products WHERE id = ?", arguments: [id.uppercased()]) }
        guard let row = row ?? nil else { return nil }
        let name: String? = row["name"], price: Int? = row["price_eur"]
        return "\(name ?? id) (\(id.uppercased()), \(price ?? 0) EUR each)"
    }

    /// Adds `quantity` of a product to the cart (on top of what is there).
    public func addToCart(_ productID: String, quantity: Int) throws -> JSONValue {
        let id = productID.uppercased()
        guard quantity >= 1 else { throw ToolError("quantity must be at least 1") }
        return try write("adding \(quantity) × \(id) to the cart") { db in
            guard let stock = try Int.fetchOne(db, sql: "SELECT stock FROM products WHERE id = ?", arguments: [id]) else {
                throw ToolError("no product \(id); search products first and use a product_id from the results")
            }
            try db.execute(sql: """
                INSERT INTO cart_items (product_id, quantity) VALUES (?, ?)
                ON CONFLICT (product_id) DO UPDATE SET quantity = quantity + excluded.quantity
                """, arguments: [id, quantity])
            let inCart = try Int.fetchOne(db, sql: "SELECT quantity FROM cart_items WHERE product_id = ?", arguments: [id]) ?? quantity
            return .object([("product_id", .string(id)), ("quantity_in_cart", .int(inCart)), ("stock", .int(stock))])
        }
    }

    /// The cart's lines and total.
    public func viewCart() throws -> JSONValue {
        try database.read { db in try Self.cart(db) }
    }

    static func cart(_ db: Database) throws -> JSONValue {
        let rows = try Row.fetchAll(db, sql: """
            SELECT c.product_id, c.quantity, p.name, p.price_eur FROM cart_items c JOIN products p ON p.id = c.product_id
            ORDER BY c.product_id
            """)
        var total = 0
        let items: [JSONValue] = rows.map { row in
            let quantity: Int = row["quantity"] ?? 0, price: Int = row["price_eur"] ?? 0
            total += quantity * price
            return .object([("product_id", .string(row["product_id"] ?? "")), ("name", .string(row["name"] ?? "")),
                            ("quantity", .int(quantity)), ("price_eur", .int(price))])
        }
        return .object([("items", .array(items)), ("total_eur", .int(total))])
    }

    /// "3 items for 177 EUR", for the checkout confirmation.
    public func cartSummary() -> String {
        guard let cart = try? viewCart(), let items = cart["items"]?.arrayValue, !items.isEmpty else { return "an empty cart" }
        let lines = items.map { "\($0["quantity"]?.intValue ?? 0) × \($0["name"]?.stringValue ?? "")" }
        return lines.joined(separator: ", ") + " for \(cart["total_eur"]?.intValue ?? 0) EUR"
    }

    /// Turns the cart into an order and takes the items from stock, all or nothing.
    public func checkout() throws -> JSONValue {
        try write("checkout") { db in
            let cart = try Self.cart(db)
            guard let items = cart["items"]?.arrayValue, !items.isEmpty else { throw ToolError("the cart is empty") }
            let total = cart["total_eur"]?.intValue ?? 0
            try db.execute(sql: "INSERT INTO orders (total_eur, created_at) VALUES (?, ?)", arguments: [total, Self.now()])
            let order = Int(db.lastInsertedRowID)
            for item in items {
                let id = item["product_id"]?.stringValue ?? "", quantity = item["quantity"]?.intValue ?? 0
                try db.execute(sql: "INSERT INTO order_items VALUES (?, ?, ?, ?)",
                               arguments: [order, id, quantity, item["price_eur"]?.intValue ?? 0])
                try db.execute(sql: "UPDATE products SET stock = stock - ? WHERE id = ?", arguments: [quantity, id])
            }
            try db.execute(sql: "DELETE FROM cart_items")
            return .object([("order_id", .int(order)), ("items", .array(items)), ("total_eur", .int(total))])
        }
    }
}

/// Every executed side effect goes to the `audit_log` table.
extension TravelStore: AuditLog {
    public func record(_ entry: AuditEntry) async throws {
        let at = ISO8601DateFormatter().string(from: entry.date)
        try await database.write { db in
            try db.execute(sql: """
                INSERT INTO audit_log (who, tool, description, arguments, result, succeeded, at) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [entry.who, entry.tool, entry.description, entry.arguments.pythonJSON, entry.result.pythonJSON,
                                 entry.succeeded, at])
        }
    }

    /// The audit log, oldest first.
    public func auditEntries() throws -> [AuditEntry] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit_log ORDER BY id").map { row in
                let arguments: String = row["arguments"] ?? "{}", result: String = row["result"] ?? "null"
                let at: String = row["at"] ?? ""
                return AuditEntry(who: row["who"] ?? "", tool: row["tool"] ?? "", description: row["description"] ?? "",
                                  arguments: (try? JSONValue.parse(arguments)) ?? .string(arguments),
                                  result: (try? JSONValue.parse(result)) ?? .string(result),
                                  succeeded: row["succeeded"] ?? false,
                                  date: ISO8601DateFormatter().date(from: at) ?? Date(timeIntervalSince1970: 0))
            }
        }
    }

    /// Runs a read-only SQL query and returns its rows as JSON objects (for checks and tests).
    public func query(_ sql: String, _ arguments: [String] = []) throws -> [JSONValue] {
        try database.read { db in
            try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).map { row in
                .object(row.columnNames.map { column in
                    let value: DatabaseValue = row[column]
                    switch value.storage {
                    case .int64(let i): return (column, .int(Int(i)))
                    case .double(let d): return (column, .double(d))
                    case .string(let s): return (column, .string(s))
                    case .blob, .null: return (column, .null)
                    }
                })
            }
        }
    }

    /// Runs raw SQL in a transaction (for tests of the database's own constraints).
    public func execute(_ sql: String) throws {
        try database.write { db in try db.execute(sql: sql) }
    }
}
