import Foundation
import GRDB
import QwenKit

/// The demo world on SQLite: flights, hotels and products seeded deterministically, and the
/// bookings, cart, orders and audit log the agent writes.
///
/// The database itself refuses impossible writes, inside the transaction that attempts them:
/// a seat booked twice (a unique index over active bookings), a full flight or hotel (triggers),
/// more of a product than is in stock (triggers on the cart and on `stock`).
public final class TravelStore: Sendable {
    let database: DatabaseQueue
    /// The seed every database is built from.
    public static let seed: UInt64 = 20_261_201

    /// Opens (creating and seeding on first use) the database at `path`.
    public init(path: String) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        database = try DatabaseQueue(path: path)
        try prepare()
    }

    /// A seeded database in memory (for tests).
    public init() throws {
        database = try DatabaseQueue()
        try prepare()
    }

    private func prepare() throws {
        try database.write { db in
            guard try !db.tableExists("flights") else { return }
            try Self.createSchema(db)
            try Self.seed(db)
        }
    }

    /// Copies a consistent snapshot of the database to `path` (for a fresh copy per eval task).
    public func copy(to path: String) throws {
        let target = try DatabaseQueue(path: path)
        try database.backup(to: target)
    }

    // MARK: Schema

    static func createSchema(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE cities (name TEXT PRIMARY KEY, country TEXT NOT NULL, airport TEXT NOT NULL);
            CREATE TABLE flights (
                id TEXT PRIMARY KEY, airline TEXT NOT NULL,
                origin TEXT NOT NULL REFERENCES cities(name), destination TEXT NOT NULL REFERENCES cities(name),
                date TEXT NOT NULL, departs TEXT NOT NULL, arrives TEXT NOT NULL,
                price_eur INTEGER NOT NULL, seats INTEGER NOT NULL CHECK (seats > 0));
            CREATE INDEX flights_by_route ON flights(origin, destination, date);
            CREATE TABLE hotels (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, city TEXT NOT NULL REFERENCES cities(name),
                stars INTEGER NOT NULL, price_eur INTEGER NOT NULL, rooms INTEGER NOT NULL CHECK (rooms > 0));
            CREATE INDEX hotels_by_city ON hotels(city);
            CREATE TABLE products (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL, brand TEXT NOT NULL,
                price_eur INTEGER NOT NULL, stock INTEGER NOT NULL CHECK (stock >= 0));
            CREATE TABLE bookings (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL CHECK (kind IN ('flight', 'hotel')),
                flight_id TEXT REFERENCES flights(id), seat TEXT,
                hotel_id TEXT REFERENCES hotels(id), check_in TEXT, check_out TEXT,
                price_eur INTEGER NOT NULL,
                status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled')),
                created_at TEXT NOT NULL);
            -- One passenger per seat: the database refuses a second active booking of a seat.
            CREATE UNIQUE INDEX one_passenger_per_seat ON bookings(flight_id, seat)
                WHERE kind = 'flight' AND status = 'active';
            CREATE TRIGGER flight_not_full BEFORE INSERT ON bookings WHEN NEW.kind = 'flight' BEGIN
                SELECT RAISE(ABORT, 'the flight is full')
                WHERE (SELECT count(*) FROM bookings WHERE kind = 'flight' AND flight_id = NEW.flight_id AND status = 'active')
                      >= (SELECT seats FROM flights WHERE id = NEW.flight_id);
            END;
            CREATE TRIGGER seat_not_taken BEFORE INSERT ON bookings WHEN NEW.kind = 'flight' BEGIN
                SELECT RAISE(ABORT, 'the seat is already booked on this flight')
                WHERE EXISTS (SELECT 1 FROM bookings WHERE kind = 'flight' AND flight_id = NEW.flight_id
                              AND seat = NEW.seat AND status = 'active');
            END;
            CREATE TRIGGER hotel_has_room BEFORE INSERT ON bookings WHEN NEW.kind = 'hotel' BEGIN
                SELECT RAISE(ABORT, 'the hotel has no room left for these dates')
                WHERE (SELECT count(*) FROM bookings WHERE kind = 'hotel' AND hotel_id = NEW.hotel_id AND status = 'active'
                       AND check_in < NEW.check_out AND NEW.check_in < check_out)
                      >= (SELECT rooms FROM hotels WHERE id = NEW.hotel_id);
            END;
            CREATE TABLE cart_items (
                product_id TEXT PRIMARY KEY REFERENCES products(id), quantity INTEGER NOT NULL CHECK (quantity > 0));
            CREATE TRIGGER cart_within_stock_insert BEFORE INSERT ON cart_items BEGIN
                SELECT RAISE(ABORT, 'not enough stock') WHERE NEW.quantity > (SELECT stock FROM products WHERE id = NEW.product_id);
            END;
            CREATE TRIGGER cart_within_stock_update BEFORE UPDATE OF quantity ON cart_items BEGIN
                SELECT RAISE(ABORT, 'not enough stock') WHERE NEW.quantity > (SELECT stock FROM products WHERE id = NEW.product_id);
            END;
            CREATE TRIGGER stock_not_negative BEFORE UPDATE OF stock ON products WHEN NEW.stock < 0 BEGIN
                SELECT RAISE(ABORT, 'not enough stock');
            END;
            CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT, total_eur INTEGER NOT NULL, created_at TEXT NOT NULL);
            CREATE TABLE order_items (
                order_id INTEGER NOT NULL REFERENCES orders(id), product_id TEXT NOT NULL REFERENCES products(id),
                quantity INTEGER NOT NULL CHECK (quantity > 0), price_eur INTEGER NOT NULL);
            CREATE TABLE audit_log (
                id INTEGER PRIMARY KEY AUTOINCREMENT, who TEXT NOT NULL, tool TEXT NOT NULL, description TEXT NOT NULL,
                arguments TEXT NOT NULL, result TEXT NOT NULL, succeeded INTEGER NOT NULL, at TEXT NOT NULL);
            """)
    }

    // MARK: Seed

    /// Fills the catalogue from ``seed``: ~1,900 flights, 520 hotels, 960 products.
    static func seed(_ db: Database) throws {
        var random = SplitMix64(seed: seed)
        for city in DemoWorld.cities {
            try db.execute(sql: "INSERT INTO cities VALUES (?, ?, ?)", arguments: [city.name, city.country, city.airport])
        }
        // Routes: the key routes both ways, then a random ~9% of the other city pairs.
        var routes: [(City, City)] = []
        let byName = Dictionary(uniqueKeysWithValues: DemoWorld.cities.map { ($0.name, $0) })
        for (a, b) in DemoWorld.keyRoutes {
            if let from = byName[a], let to = byName[b] { routes += [(from, to), (to, from)] }
        }
        for from in DemoWorld.cities {
            for to in DemoWorld.cities where to.name != from.name {
                guard !routes.contains(where: { $0.0.name == from.name && $0.1.name == to.name }) else { continue }
                if random.chance(9) { routes.append((from, to)) }
            }
        }
        var flightNumber = 100
        for (from, to) in routes {
            let (hours, basePrice) = Self.leg(from.region, to.region)
            let departure = random.int(6...21)
            let minutes = random.pick([0, 10, 15, 25, 30, 40, 45, 55])
            let airline = random.pick(DemoWorld.airlines)
            // A flight every one to three days, at the same time, with prices that vary by day.
            var day = random.int(0...2)
            while day < DemoWorld.days {
                let date = DemoWorld.firstDay.adding(days: day)
                let price = basePrice * random.int(80...135) / 100
                let duration = hours * 60 + random.int(0...50)
                let arrival = departure * 60 + minutes + duration
                let arrives = String(format: "%02d:%02d", (arrival / 60) % 24, arrival % 60) + (arrival >= 24 * 60 ? " +\(arrival / (24 * 60))" : "")
                try db.execute(sql: "INSERT INTO flights VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", arguments: [
                    "QK\(flightNumber)", airline, from.name, to.name, date.description,
                    String(format: "%02d:%02d", departure, minutes), arrives, price, random.pick([120, 150, 180, 240, 300]),
                ])
                flightNumber += 1
                day += random.int(1...3)
            }
        }
        var hotelNumber = 1
        for city in DemoWorld.cities {
            for _ in 0..<20 {
                let stars = random.int(2...5)
                let name = "\(random.pick(DemoWorld.hotelPrefixes)) \(city.name) \(random.pick(DemoWorld.hotelSuffixes))"
                let price = (25 + stars * stars * 9) * city.costLevel / 100 * random.int(85...125) / 100
                try db.execute(sql: "INSERT INTO hotels VALUES (?, ?, ?, ?, ?, ?)", arguments: [
                    String(format: "H%04d", hotelNumber), name, city.name, stars, price, random.int(3...40),
                ])
                hotelNumber += 1
            }
        }
        var productNumber = 1
        for category in DemoWorld.categories {
            for _ in 0..<80 {
                let brand = random.pick(DemoWorld.brands)
                let name = "\(brand) \(random.pick(DemoWorld.models)) \(random.pick(category.nouns))"
                let stock = random.chance(8) ? 0 : random.int(1...60)
                try db.execute(sql: "INSERT INTO products VALUES (?, ?, ?, ?, ?, ?)", arguments: [
                    String(format: "P%04d", productNumber), name, category.name, brand, random.int(category.price), stock,
                ])
                productNumber += 1
            }
        }
    }

    /// Flight hours and a typical one-way economy price in EUR between two regions.
    static func leg(_ a: City.Region, _ b: City.Region) -> (hours: Int, price: Int) {
        if a == b { return a == .europe || a == .southeastAsia ? (2, 110) : (3, 180) }
        let pair = Set([a, b])
        if pair == [.europe, .northAmerica] { return (8, 520) }
        if pair == [.europe, .middleEast] { return (6, 380) }
        if pair.contains(.oceania) { return (11, 900) }
        if pair == [.eastAsia, .southeastAsia] { return (4, 260) }
        if pair == [.europe, .eastAsia] || pair == [.europe, .southeastAsia] { return (12, 640) }
        if pair == [.northAmerica, .eastAsia] || pair == [.northAmerica, .southeastAsia] { return (13, 780) }
        return (7, 450)
    }

    /// A digest of every catalogue row, to check that seeding is deterministic.
    public func catalogueFingerprint() throws -> String {
        try database.read { db in
            var text = ""
            for table in ["cities", "flights", "hotels", "products"] {
                for row in try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY rowid") {
                    text += row.description + "\n"
                }
            }
            return text
        }
    }
}
