import Foundation
import QwenKit

/// The demo domain's ten tools over one ``TravelStore``.
public enum DemoTools {
    /// Every tool: travel (`search_flights`, `book_flight`, `search_hotels`, `book_hotel`,
    /// `list_bookings`, `cancel_booking`) and shopping (`search_products`, `add_to_cart`,
    /// `view_cart`, `checkout`).
    public static func all(_ store: TravelStore) -> [any AgentTool] {
        travel(store) + shopping(store)
    }

    /// The travel tools only.
    public static func travel(_ store: TravelStore) -> [any AgentTool] {
        [
            StoreTool(store: store, name: "search_flights",
                      description: "Find flights between two cities, optionally on a date (YYYY-MM-DD).",
                      parameters: schema(["origin": string("Departure city, in English"),
                                          "destination": string("Arrival city, in English"),
                                          "date": string("Date YYYY-MM-DD")], required: ["origin", "destination"]),
                      sideEffect: false) { store, a in
                try store.searchFlights(origin: a["origin"]?.stringValue ?? "", destination: a["destination"]?.stringValue ?? "",
                                        date: a["date"]?.stringValue)
            },
            StoreTool(store: store, name: "book_flight",
                      description: "Book a seat on a flight, by the flight_id from search_flights (e.g. QK123).",
                      parameters: schema(["flight_id": string("Flight id such as QK123"),
                                          "seat": string("Optional seat such as 12A")], required: ["flight_id"]),
                      sideEffect: true, grounded: ["flight_id"],
                      check: { store, a in
                          guard let seat = a["seat"]?.stringValue else { return }
                          try store.checkSeat(seat, onFlight: a["flight_id"]?.stringValue ?? "")
                      },
                      describe: { store, a in
                          let id = a["flight_id"]?.stringValue ?? ""
                          let seat = a["seat"]?.stringValue.map { ", seat \($0)" } ?? ""
                          return "Book flight \(store.flightSummary(id) ?? id)\(seat)?"
                      }) { store, a in
                try store.bookFlight(a["flight_id"]?.stringValue ?? "", seat: a["seat"]?.stringValue)
            },
            StoreTool(store: store, name: "search_hotels",
                      description: "Find hotels in a city, cheapest first.",
                      parameters: schema(["city": string("City, in English"),
                                          "check_in": string("Date YYYY-MM-DD"),
                                          "nights": integer("Number of nights", minimum: 1),
                                          "max_price": integer("Highest price per night in EUR", minimum: 1),
                                          "min_stars": integer("Fewest stars", minimum: 1, maximum: 5)],
                                         required: ["city"]),
                      sideEffect: false) { store, a in
                try store.searchHotels(city: a["city"]?.stringValue ?? "", checkIn: a["check_in"]?.stringValue,
                                       nights: a["nights"]?.intValue, maxPrice: a["max_price"]?.intValue,
                                       minStars: a["min_stars"]?.intValue)
            },
            StoreTool(store: store, name: "book_hotel",
                      description: "Book a hotel room by hotel_id from search_hotels.",
                      parameters: schema(["hotel_id": string("Hotel id such as H0042"),
                                          "check_in": string("Date YYYY-MM-DD"),
                                          "nights": integer("Number of nights", minimum: 1)],
                                         required: ["hotel_id", "check_in", "nights"]),
                      sideEffect: true, grounded: ["hotel_id"],
                      describe: { store, a in
                          let id = a["hotel_id"]?.stringValue ?? "", checkIn = a["check_in"]?.stringValue ?? ""
                          let nights = a["nights"]?.intValue ?? 1
                          return "Book \(store.hotelSummary(id, checkIn: checkIn, nights: nights) ?? "hotel \(id) from \(checkIn)")?"
                      }) { store, a in
                try store.bookHotel(a["hotel_id"]?.stringValue ?? "", checkIn: a["check_in"]?.stringValue ?? "",
                                    nights: a["nights"]?.intValue ?? 1)
            },
            StoreTool(store: store, name: "list_bookings", description: "List the user's flight and hotel bookings.",
                      parameters: schema([:], required: []), sideEffect: false) { store, _ in try store.listBookings() },
            StoreTool(store: store, name: "cancel_booking", description: "Cancel a booking by its booking_id.",
                      parameters: schema(["booking_id": integer("Booking id from list_bookings", minimum: 1)],
                                         required: ["booking_id"]),
                      sideEffect: true, grounded: ["booking_id"],
                      describe: { store, a in
                          let id = a["booking_id"]?.intValue ?? 0
                          return "Cancel \(store.bookingSummary(id) ?? "booking \(id)")?"
                      }) { store, a in try store.cancelBooking(a["booking_id"]?.intValue ?? 0) },
        ]
    }

    /// The shopping tools only.
    public static func shopping(_ store: TravelStore) -> [any AgentTool] {
        [
            StoreTool(store: store, name: "search_products",
                      description: "Find products in stock by words (name, brand or kind), cheapest first.",
                      parameters: schema(["query": string("What to look for, e.g. headphones"),
                                          "max_price": integer("Highest price in EUR", minimum: 1)], required: ["query"]),
                      sideEffect: false) { store, a in
                try store.searchProducts(query: a["query"]?.stringValue ?? "", maxPrice: a["max_price"]?.intValue)
            },
            StoreTool(store: store, name: "add_to_cart",
                      description: "Put a quantity of a product (product_id from search_products) in the cart.",
                      parameters: schema(["product_id": string("Product id such as P0042"),
                                          "quantity": integer("How many", minimum: 1)], required: ["product_id", "quantity"]),
                      sideEffect: true, grounded: ["product_id"],
                      describe: { store, a in
                          let id = a["product_id"]?.stringValue ?? "", quantity = a["quantity"]?.intValue ?? 1
                          return "Add \(quantity) × \(store.productSummary(id) ?? id) to the cart?"
                      }) { store, a in
                try store.addToCart(a["product_id"]?.stringValue ?? "", quantity: a["quantity"]?.intValue ?? 1)
            },
            StoreTool(store: store, name: "view_cart", description: "Show the cart and its total.",
                      parameters: schema([:], required: []), sideEffect: false) { store, _ in try store.viewCart() },
            StoreTool(store: store, name: "checkout", description: "Buy everything in the cart.",
                      parameters: schema([:], required: []), sideEffect: true,
                      describe: { store, _ in "Buy \(store.cartSummary())?" }) { store, _ in try store.checkout() },
        ]
    }

    static func schema(_ properties: KeyValuePairs<String, JSONValue>, required: [String]) -> JSONValue {
        .object([("type", "object"), ("properties", .object(properties.map { ($0.key, $0.value) })),
                 ("required", .array(required.map(JSONValue.string)))])
    }

    static func string(_ description: String) -> JSONValue {
        .object([("type", "string"), ("description", .string(description))])
    }

    static func integer(_ description: String, minimum: Int? = nil, maximum: Int? = nil) -> JSONValue {
        var members: [(String, JSONValue)] = [("type", "integer"), ("description", .string(description))]
        if let minimum { members.append(("minimum", .int(minimum))) }
        if let maximum { members.append(("maximum", .int(maximum))) }
        return .object(members)
    }
}

/// A tool backed by a ``TravelStore`` method.
struct StoreTool: AgentTool {
    let store: TravelStore
    let name: String
    let description: String
    let parameters: JSONValue
    let sideEffect: Bool
    let groundedArguments: [String]
    var checkCall: (@Sendable (TravelStore, JSONValue) throws -> Void)?
    var describeCall: (@Sendable (TravelStore, JSONValue) -> String)?
    let body: @Sendable (TravelStore, JSONValue) throws -> JSONValue

    init(store: TravelStore, name: String, description: String, parameters: JSONValue, sideEffect: Bool,
         grounded: [String] = [], check: (@Sendable (TravelStore, JSONValue) throws -> Void)? = nil,
         describe: (@Sendable (TravelStore, JSONValue) -> String)? = nil,
         body: @escaping @Sendable (TravelStore, JSONValue) throws -> JSONValue) {
        self.store = store
        self.name = name
        self.description = description
        self.parameters = parameters
        self.sideEffect = sideEffect
        groundedArguments = grounded
        checkCall = check
        describeCall = describe
        self.body = body
    }

    func check(_ arguments: JSONValue) throws { try checkCall?(store, arguments) }

    func describe(_ arguments: JSONValue) -> String {
        describeCall?(store, arguments) ?? "Run \(name) with \(arguments.pythonJSON)?"
    }

    func run(_ arguments: JSONValue) async throws -> JSONValue { try body(store, arguments) }
}
