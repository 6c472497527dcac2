import Foundation

/// The `Date` field's value (RFC 9110 §5.6.7): `Mon, 07 Dec 2026 18:15:51 GMT`.
enum HTTPDate {
    static let days = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func string(secondsSince1970 seconds: Int) -> String {
        let (dayNumber, secondOfDay) = seconds.quotientAndRemainder(dividingBy: 86_400)
        // Days to a civil date (Howard Hinnant's algorithm), for dates after 1970.
        let z = dayNumber + 719_468
        let era = z / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }
        let (hour, rest) = secondOfDay.quotientAndRemainder(dividingBy: 3600)
        let (minute, second) = rest.quotientAndRemainder(dividingBy: 60)
        return "\(Self.days[dayNumber % 7]), \(two(day)) \(Self.months[month - 1]) \(year) \(two(hour)):\(two(minute)):\(two(second)) GMT"
    }
}

/// The `Date` field of one connection's answers, made at most once a second.
struct HTTPDateField {
    private var second = 0
    private var value = ""

    mutating func current() -> String {
        let now = Int(Date().timeIntervalSince1970)
        if now != self.second { (self.second, self.value) = (now, HTTPDate.string(secondsSince1970: now)) }
        return self.value
    }
}
