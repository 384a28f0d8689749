import Foundation
import QwenKit

/// The seeded database draws from SplitMix64, whose sequence is fixed by its seed on every
/// platform, so the database is byte-for-byte the same everywhere.
extension SplitMix64 {
    /// A uniform integer in `range`, by integer arithmetic only (no floating point, no stdlib algorithm
    /// that could change between releases).
    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }
    mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }
    /// True with probability `percent`/100.
    mutating func chance(_ percent: Int) -> Bool { int(0...99) < percent }
}

/// A city of the demo world, with the names users write it with.
struct City: Sendable {
    var name: String
    var country: String
    var airport: String
    enum Region: Sendable { case europe, eastAsia, southeastAsia, northAmerica, middleEast, oceania }
    var region: Region
    /// Price level of hotels, in percent of the average.
    var costLevel: Int
    var aliases: [String]
}

/// The fixed world the seed draws from. Order matters: the generator walks these arrays.
enum DemoWorld {
    static let cities: [City] = [
        City(name: "Paris", country: "France", airport: "CDG", region: .europe, costLevel: 130, aliases: ["巴黎", "Pa-ri", "Pari"]),
        City(name: "Lyon", country: "France", airport: "LYS", region: .europe, costLevel: 95, aliases: ["里昂"]),
        City(name: "Nice", country: "France", airport: "NCE", region: .europe, costLevel: 115, aliases: ["尼斯"]),
        City(name: "London", country: "United Kingdom", airport: "LHR", region: .europe, costLevel: 140, aliases: ["伦敦", "Londres", "Luân Đôn"]),
        City(name: "Berlin", country: "Germany", airport: "BER", region: .europe, costLevel: 100, aliases: ["柏林", "Béc-lin"]),
        City(name: "Rome", country: "Italy", airport: "FCO", region: .europe, costLevel: 110, aliases: ["罗马", "Roma"]),
        City(name: "Madrid", country: "Spain", airport: "MAD", region: .europe, costLevel: 95, aliases: ["马德里"]),
        City(name: "Barcelona", country: "Spain", airport: "BCN", region: .europe, costLevel: 105, aliases: ["巴塞罗那", "Barcelone"]),
        City(name: "Amsterdam", country: "Netherlands", airport: "AMS", region: .europe, costLevel: 125, aliases: ["阿姆斯特丹"]),
        City(name: "Tokyo", country: "Japan", airport: "HND", region: .eastAsia, costLevel: 120, aliases: ["东京", "東京", "Tokio", "Tô-ky-ô"]),
        City(name: "Osaka", country: "Japan", airport: "KIX", region: .eastAsia, costLevel: 100, aliases: ["大阪"]),
        City(name: "Seoul", country: "South Korea", airport: "ICN", region: .eastAsia, costLevel: 100, aliases: ["首尔", "Séoul", "Xơ-un"]),
        City(name: "Beijing", country: "China", airport: "PEK", region: .eastAsia, costLevel: 90, aliases: ["北京", "Pékin", "Bắc Kinh", "Peking"]),
        City(name: "Shanghai", country: "China", airport: "PVG", region: .eastAsia, costLevel: 95, aliases: ["上海", "Thượng Hải"]),
        City(name: "Guangzhou", country: "China", airport: "CAN", region: .eastAsia, costLevel: 80, aliases: ["广州", "Quảng Châu", "Canton"]),
        City(name: "Hong Kong", country: "China", airport: "HKG", region: .eastAsia, costLevel: 130, aliases: ["香港", "Hồng Kông"]),
        City(name: "Hanoi", country: "Vietnam", airport: "HAN", region: .southeastAsia, costLevel: 55, aliases: ["河内", "Hà Nội", "Ha Noi"]),
        City(name: "Ho Chi Minh City", country: "Vietnam", airport: "SGN", region: .southeastAsia, costLevel: 55,
             aliases: ["胡志明市", "Hồ Chí Minh", "Thành phố Hồ Chí Minh", "Saigon", "Sài Gòn", "TP HCM", "Ho Chi Minh-Ville"]),
        City(name: "Da Nang", country: "Vietnam", airport: "DAD", region: .southeastAsia, costLevel: 50, aliases: ["岘港", "Đà Nẵng"]),
        City(name: "Bangkok", country: "Thailand", airport: "BKK", region: .southeastAsia, costLevel: 60, aliases: ["曼谷", "Băng Cốc"]),
        City(name: "Singapore", country: "Singapore", airport: "SIN", region: .southeastAsia, costLevel: 125, aliases: ["新加坡", "Singapour", "Xin-ga-po"]),
        City(name: "New York", country: "United States", airport: "JFK", region: .northAmerica, costLevel: 150, aliases: ["纽约", "New York City", "NYC", "Niu Oóc"]),
        City(name: "San Francisco", country: "United States", airport: "SFO", region: .northAmerica, costLevel: 140, aliases: ["旧金山"]),
        City(name: "Montreal", country: "Canada", airport: "YUL", region: .northAmerica, costLevel: 100, aliases: ["蒙特利尔", "Montréal"]),
        City(name: "Dubai", country: "United Arab Emirates", airport: "DXB", region: .middleEast, costLevel: 120, aliases: ["迪拜", "Dubaï"]),
        City(name: "Sydney", country: "Australia", airport: "SYD", region: .oceania, costLevel: 120, aliases: ["悉尼"]),
    ]

    /// Routes every seeding includes (both ways), so the task suite can rely on them.
    static let keyRoutes: [(String, String)] = [
        ("Paris", "Tokyo"), ("Paris", "Hanoi"), ("Paris", "Beijing"), ("Paris", "London"), ("Paris", "Nice"),
        ("Lyon", "Paris"), ("Beijing", "Shanghai"), ("Shanghai", "Tokyo"), ("Hanoi", "Ho Chi Minh City"),
        ("Hanoi", "Da Nang"), ("London", "New York"), ("Singapore", "Bangkok"), ("Montreal", "Paris"),
        ("Guangzhou", "Hong Kong"), ("Ho Chi Minh City", "Singapore"),
    ]

    static let airlines = ["Qwen Air", "Lotus Airways", "Azure Wings", "Silk Route Air", "Mekong Express"]

    /// (category, names users write it with, price range in EUR, product nouns).
    static let categories: [(name: String, aliases: [String], price: ClosedRange<Int>, nouns: [String])] = [
        ("headphones", ["耳机", "écouteurs", "casque", "tai nghe", "headphone", "earbuds"], 19...399, ["Headphones", "Earbuds", "Headset"]),
        ("phones", ["手机", "téléphone", "smartphone", "điện thoại", "phone"], 129...1299, ["Phone", "Smartphone"]),
        ("laptops", ["笔记本电脑", "电脑", "ordinateur portable", "ordinateur", "máy tính xách tay", "laptop"], 399...2499, ["Laptop", "Notebook"]),
        ("shoes", ["鞋", "鞋子", "chaussures", "giày", "sneakers", "shoe"], 39...219, ["Running Shoes", "Sneakers", "Hiking Boots"]),
        ("backpacks", ["背包", "sac à dos", "ba lô", "backpack"], 25...189, ["Backpack", "Travel Pack"]),
        ("coffee", ["咖啡", "café", "cà phê"], 6...39, ["Coffee Beans", "Ground Coffee"]),
        ("tea", ["茶", "茶叶", "thé", "trà"], 5...45, ["Green Tea", "Oolong Tea", "Jasmine Tea"]),
        ("books", ["书", "livre", "livres", "sách", "book"], 8...45, ["Guidebook", "Novel", "Cookbook"]),
        ("watches", ["手表", "montre", "đồng hồ", "watch"], 49...899, ["Watch", "Smartwatch"]),
        ("cameras", ["相机", "appareil photo", "máy ảnh", "camera"], 199...2199, ["Camera", "Action Camera"]),
        ("umbrellas", ["雨伞", "伞", "parapluie", "ô", "dù", "umbrella"], 9...59, ["Umbrella", "Travel Umbrella"]),
        ("suitcases", ["行李箱", "valise", "vali", "suitcase", "luggage"], 59...449, ["Suitcase", "Carry-on"]),
    ]
    static let brands = ["Lumen", "Orbit", "Kestrel", "Nova", "Saigon Craft", "Hanami", "Tamarind", "Boreal", "Atlas", "Zephyr"]
    static let models = ["One", "Pro", "Air", "Lite", "Max", "S", "X", "Go", "Plus", "Mini"]
    static let hotelPrefixes = ["Grand", "Lotus", "Riverside", "Old Town", "Harbour", "Garden", "Central", "Skyline", "Bamboo", "Royal"]
    static let hotelSuffixes = ["Hotel", "Inn", "Suites", "Residence", "Boutique Hotel"]

    /// The first day with flights and the number of days covered.
    static let firstDay = CivilDate(year: 2026, month: 12, day: 1)
    static let days = 62
}

/// A calendar date without time zones (proleptic Gregorian), for deterministic date arithmetic.
struct CivilDate: Sendable, Comparable, CustomStringConvertible {
    /// Days since 1970-01-01.
    var dayNumber: Int

    init(dayNumber: Int) { self.dayNumber = dayNumber }

    init(year: Int, month: Int, day: Int) {
        // Howard Hinnant's days_from_civil.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        dayNumber = era * 146_097 + doe - 719_468
    }

    /// Parses `YYYY-MM-DD`; nil for anything else or an impossible date.
    init?(_ text: String) {
        let parts = text.split(separator: "-")
        guard parts.count == 3, parts[0].count == 4, let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]),
              (1...12).contains(m), (1...31).contains(d) else { return nil }
        self.init(year: y, month: m, day: d)
        guard description == String(format: "%04d-%02d-%02d", y, m, d) else { return nil }
    }

    var components: (year: Int, month: Int, day: Int) {
        let z = dayNumber + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    var description: String {
        let (y, m, d) = components
        return String(format: "%04d-%02d-%02d", y, m, d)
    }

    func adding(days: Int) -> CivilDate { CivilDate(dayNumber: dayNumber + days) }
    static func < (a: CivilDate, b: CivilDate) -> Bool { a.dayNumber < b.dayNumber }
}

/// Lower-cases and strips accents and spaces so "Hà Nội", "ha noi" and "Hanoi" compare equal.
func foldedName(_ text: String) -> String {
    let lowered = text.lowercased().replacingOccurrences(of: "đ", with: "d")
    let folded = lowered.folding(options: [.diacriticInsensitive, .caseInsensitive], locale: nil)
    return String(folded.unicodeScalars.filter { !CharacterSet.whitespacesAndNewlines.contains($0) && $0 != "-" && $0 != "." })
}
