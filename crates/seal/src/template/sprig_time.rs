//! sprig's date functions (`date`, `dateInZone`, `htmlDate`, `dateModify`, `duration`,
//! `durationRound`, `toDate`, `unixEpoch` and their aliases) over a model of Go's `time.Time`:
//! Go's layout formatting and parsing (`time.Format`, `time.ParseInLocation`), `time.ParseDuration`
//! and `Duration.String`, with Go's calendar arithmetic — unsigned and wrapping where Go's is — so
//! that even a date billions of years away prints as Go prints it. A time value prints, compares,
//! encodes to JSON and answers its methods (`$t.Year`, `$t.Format "2006"`, see [`method`]) as
//! Go's does.
//!
//! Whatever would read the clock (`now`, `ago`, `date` of anything but a time or an integer,
//! `durationRound` of a time) is refused: a Secret must not change with the time it is rendered.
//! Go's `Local` zone is UTC here, as it is in Bitnami's image; named zones come from the IANA
//! database built into `jiff`.

use super::exec::arity;
use super::value::{Value, str_value};
use std::rc::Rc;

type R<T> = Result<T, String>;

const SECONDS_PER_DAY: i64 = 86_400;
/// Years between Go's absolute epoch (March 1, -292277022399) and year 0.
const ABSOLUTE_YEARS: u64 = 292_277_022_400;
const MARCH_THRU_DECEMBER: i64 = 31 + 30 + 31 + 30 + 31 + 31 + 30 + 31 + 30 + 31;
/// `absoluteYears * 365.2425` days, exactly (absoluteYears is a multiple of 400).
const ABSOLUTE_TO_INTERNAL: i64 =
    -((ABSOLUTE_YEARS as i64 / 400 * 146_097 + MARCH_THRU_DECEMBER) * SECONDS_PER_DAY);
const INTERNAL_TO_ABSOLUTE: i64 = -ABSOLUTE_TO_INTERNAL;
const UNIX_TO_INTERNAL: i64 = (1969 * 365 + 1969 / 4 - 1969 / 100 + 1969 / 400) * SECONDS_PER_DAY;
const INTERNAL_TO_UNIX: i64 = -UNIX_TO_INTERNAL;
const ABSOLUTE_TO_UNIX: i64 = ABSOLUTE_TO_INTERNAL + INTERNAL_TO_UNIX;
const UNIX_TO_ABSOLUTE: i64 = UNIX_TO_INTERNAL + INTERNAL_TO_ABSOLUTE;

/// `time.Time.String()`'s layout.
const STRING_LAYOUT: &[u8] = b"2006-01-02 15:04:05.999999999 -0700 MST";

/// Why a call is refused when its argument makes it read the clock.
const CLOCK: &str = "depends on the clock";

/// A Go `time.Time` without a monotonic reading: seconds since January 1 of year 1 (Go's
/// internal count, which wraps as Go's does), nanoseconds, and a location.
#[derive(Clone, Debug)]
pub struct GoTime {
    sec: i64,
    nsec: u32,
    loc: Loc,
}

/// The locations a time value can hold (named zones only appear while formatting).
#[derive(Clone, Debug)]
pub enum Loc {
    /// `time.UTC` (a nil location).
    Utc,
    /// `time.Local`, which is UTC here.
    Local,
    /// `time.FixedZone(name, offset)`, as `Parse` makes for an offset or abbreviation that is
    /// not the local zone's. Each is a distinct location in Go, except the unnamed whole-hour
    /// ones Go caches.
    Fixed(Rc<(String, i64)>),
}

impl GoTime {
    /// `time.Unix(sec, 0)` (Go's addition wraps).
    fn unix(sec: i64) -> GoTime {
        GoTime {
            sec: sec.wrapping_add(UNIX_TO_INTERNAL),
            nsec: 0,
            loc: Loc::Local,
        }
    }

    /// Go's zero `time.Time{}`.
    fn zero() -> GoTime {
        GoTime {
            sec: 0,
            nsec: 0,
            loc: Loc::Utc,
        }
    }

    fn unix_sec(&self) -> i64 {
        self.sec.wrapping_add(INTERNAL_TO_UNIX)
    }

    /// `t.Add(d)`: seconds saturate where Go's `addSec` does.
    fn add(&self, d: i64) -> GoTime {
        let mut dsec = d / 1_000_000_000;
        let mut nsec = self.nsec as i64 + d % 1_000_000_000;
        if nsec >= 1_000_000_000 {
            dsec += 1;
            nsec -= 1_000_000_000;
        } else if nsec < 0 {
            dsec -= 1;
            nsec += 1_000_000_000;
        }
        let sum = self.sec.wrapping_add(dsec);
        let sec = if (sum > self.sec) == (dsec > 0) {
            sum
        } else if dsec > 0 {
            i64::MAX
        } else {
            -i64::MAX
        };
        GoTime {
            sec,
            nsec: nsec as u32,
            loc: self.loc.clone(),
        }
    }

    /// `t.String()`.
    pub fn to_go_string(&self) -> Vec<u8> {
        let zone = self.loc.zone();
        // Only named zones can fail, and a time value never holds one.
        format(self, &zone, STRING_LAYOUT, usize::MAX).unwrap_or_default()
    }

    /// `t1 == t2` in Go: the same instant, written the same way, in the same location.
    pub fn same(&self, other: &GoTime) -> bool {
        let same_loc = match (&self.loc, &other.loc) {
            (Loc::Utc, Loc::Utc) | (Loc::Local, Loc::Local) => true,
            (Loc::Fixed(a), Loc::Fixed(b)) => {
                Rc::ptr_eq(a, b) || (a.0.is_empty() && b.0.is_empty() && a.1 == b.1 && cached(a.1))
            }
            _ => false,
        };
        self.sec == other.sec && self.nsec == other.nsec && same_loc
    }

    /// `reflect.DeepEqual`: locations compared by content (UTC is a nil location, Local is not).
    pub fn deep_equal(&self, other: &GoTime) -> bool {
        let same_loc = match (&self.loc, &other.loc) {
            (Loc::Utc, Loc::Utc) | (Loc::Local, Loc::Local) => true,
            (Loc::Fixed(a), Loc::Fixed(b)) => a == b,
            _ => false,
        };
        self.sec == other.sec && self.nsec == other.nsec && same_loc
    }

    /// `json.Marshal(t)`: RFC 3339 with nanoseconds, quoted; Go refuses years outside 0..9999.
    pub fn to_json(&self) -> R<Vec<u8>> {
        let zone = self.loc.zone();
        let (_, offset, abs) = locabs(self, &zone)?;
        let (year, ..) = date(days(abs));
        if !(0..=9999).contains(&year) {
            return Err("Time.MarshalJSON: year outside of range [0,9999]".to_owned());
        }
        if offset <= -24 * 3600 || offset >= 24 * 3600 {
            return Err("Time.MarshalJSON: timezone hour outside of range [0,23]".to_owned());
        }
        let mut out = b"\"".to_vec();
        out.extend(format(
            self,
            &zone,
            b"2006-01-02T15:04:05.999999999Z07:00",
            usize::MAX,
        )?);
        out.push(b'"');
        Ok(out)
    }
}

impl Loc {
    fn zone(&self) -> Zone {
        match self {
            Loc::Utc => Zone::Utc,
            Loc::Local => Zone::Local,
            Loc::Fixed(f) => Zone::Fixed(f.0.clone(), f.1),
        }
    }
}

/// Go caches `FixedZone("", offset)` for whole hours from -12 to +14: those compare equal.
fn cached(offset: i64) -> bool {
    (-12 * 3600..=14 * 3600).contains(&offset) && offset % 3600 == 0
}

/// A location to format in.
enum Zone {
    Utc,
    Local,
    Fixed(String, i64),
    Named(jiff::tz::TimeZone),
}

/// `time.LoadLocation(name)` as sprig uses it: a name Go would not load falls back to UTC.
fn load_location(name: &[u8]) -> R<Zone> {
    let fixed = |abbr: &str, hours: i64| Ok(Zone::Fixed(abbr.to_owned(), hours * 3600));
    match name {
        b"" | b"UTC" => return Ok(Zone::Utc),
        b"Local" => return Ok(Zone::Local),
        // Since tzdata 2024b these are links to city zones (with their history); Debian's
        // tzdata, which Bitnami's image and Go read, keeps the fixed zones.
        b"EST" => return fixed("EST", -5),
        b"MST" => return fixed("MST", -7),
        b"HST" => return fixed("HST", -10),
        b"EST5EDT" | b"CST6CDT" | b"MST7MDT" | b"PST8PDT" | b"posixrules" => {
            return Err("the time zones EST5EDT, CST6CDT, MST7MDT, PST8PDT and posixrules are not supported: \
                 tz database versions disagree on their history (name a city, such as America/New_York)"
                .to_owned());
        }
        _ => {}
    }
    let Ok(name) = std::str::from_utf8(name) else {
        return Ok(Zone::Utc);
    };
    // Go looks for a file of that exact name (jiff's lookup ignores case).
    Ok(match jiff::tz::TimeZone::get(name) {
        Ok(tz) if tz.iana_name() == Some(name) => Zone::Named(tz),
        _ => Zone::Utc,
    })
}

/// The zone's abbreviation and offset at `unix`, and the absolute seconds of the local time.
fn locabs(t: &GoTime, zone: &Zone) -> R<(String, i64, u64)> {
    let sec = t.unix_sec();
    let (name, offset) = match zone {
        Zone::Utc | Zone::Local => ("UTC".to_owned(), 0),
        Zone::Fixed(name, offset) => (name.clone(), *offset),
        Zone::Named(tz) => {
            let ts = jiff::Timestamp::from_second(sec).map_err(|_| {
                "a date outside the years -9999 to 9999 in a named time zone is not supported"
                    .to_owned()
            })?;
            let info = tz.to_offset_info(ts);
            (
                info.abbreviation().to_owned(),
                i64::from(info.offset().seconds()),
            )
        }
    };
    let abs = sec.wrapping_add(offset).wrapping_add(UNIX_TO_ABSOLUTE) as u64;
    Ok((name, offset, abs))
}

fn days(abs: u64) -> u64 {
    abs / SECONDS_PER_DAY as u64
}

/// Go's `absDays.split`: century, year in century, day in (March-based) year.
fn split(days: u64) -> (u64, u64, u32) {
    let d = days.wrapping_mul(4).wrapping_add(3);
    let century = d / 146_097;
    let cd = (d % 146_097) as u32 | 3;
    let prod = 2_939_745u64 * u64::from(cd);
    let cyear = prod >> 32;
    let ayday = (prod as u32) / 2_939_745 / 4;
    (century, cyear, ayday)
}

/// Year, month (1-12) and day of the month.
fn date(days: u64) -> (i64, i64, i64) {
    let (century, cyear, ayday) = split(days);
    let d = 2141 * ayday + 197_913;
    let (amonth, mday) = (i64::from(d >> 16), 1 + i64::from((d & 0xFFFF) / 2141));
    let jan_feb = i64::from(ayday >= MARCH_THRU_DECEMBER as u32);
    let year = (century.wrapping_mul(100).wrapping_sub(ABSOLUTE_YEARS) as i64)
        .wrapping_add(cyear as i64)
        .wrapping_add(jan_feb);
    (year, amonth - jan_feb * 12, mday)
}

/// The 1-based day of the year.
fn yday(days: u64) -> i64 {
    let (century, cyear, ayday) = split(days);
    let jan_feb = i64::from(ayday >= MARCH_THRU_DECEMBER as u32);
    let leap = i64::from(cyear % 4 == 0 && (cyear != 0 || century % 4 == 0));
    i64::from(ayday) + (1 + 31 + 28) + (leap & !jan_feb) - 365 * jan_feb
}

const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// One element of a layout.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    TZ,
    Iso8601TZ,
    Iso8601SecondsTZ,
    Iso8601ShortTZ,
    Iso8601ColonTZ,
    Iso8601ColonSecondsTZ,
    NumTZ,
    NumSecondsTZ,
    NumShortTZ,
    NumColonTZ,
    NumColonSecondsTZ,
    /// `.000`, `,000` (`trim` false) or `.999` (`trim` true); Go keeps the digit count mod 4096.
    Frac {
        trim: bool,
        digits: usize,
        sep: u8,
    },
}

impl Std {
    fn needs_date(self) -> bool {
        use Std::*;
        matches!(
            self,
            LongMonth
                | Month
                | NumMonth
                | ZeroMonth
                | LongWeekDay
                | WeekDay
                | Day
                | UnderDay
                | ZeroDay
                | LongYear
                | Year
        )
    }

    fn needs_clock(self) -> bool {
        use Std::*;
        matches!(
            self,
            Hour | Hour12 | ZeroHour12 | Minute | ZeroMinute | Second | ZeroSecond | PM | Pm
        )
    }
}

fn is_digit(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(u8::is_ascii_digit)
}

/// Go's `nextStdChunk`: the text before the first layout element, the element, and the rest.
fn next_std_chunk(layout: &[u8]) -> (&[u8], Option<Std>, &[u8]) {
    use Std::*;
    let at = |i: usize, s: &[u8]| layout.get(i..i + s.len()) == Some(s);
    for i in 0..layout.len() {
        let found: Option<(usize, Std, usize)> = match layout[i] {
            b'J' if at(i, b"Jan") => {
                if at(i, b"January") {
                    Some((i, LongMonth, i + 7))
                } else if !layout.get(i + 3).is_some_and(u8::is_ascii_lowercase) {
                    Some((i, Month, i + 3))
                } else {
                    None
                }
            }
            b'M' if at(i, b"Mon") => {
                if at(i, b"Monday") {
                    Some((i, LongWeekDay, i + 6))
                } else if !layout.get(i + 3).is_some_and(u8::is_ascii_lowercase) {
                    Some((i, WeekDay, i + 3))
                } else {
                    None
                }
            }
            b'M' if at(i, b"MST") => Some((i, TZ, i + 3)),
            b'0' if layout.get(i + 1).is_some_and(|c| (b'1'..=b'6').contains(c)) => {
                let std = [ZeroMonth, ZeroDay, ZeroHour12, ZeroMinute, ZeroSecond, Year]
                    [usize::from(layout[i + 1] - b'1')];
                Some((i, std, i + 2))
            }
            b'0' if at(i, b"002") => Some((i, ZeroYearDay, i + 3)),
            b'1' if at(i, b"15") => Some((i, Hour, i + 2)),
            b'1' => Some((i, NumMonth, i + 1)),
            b'2' if at(i, b"2006") => Some((i, LongYear, i + 4)),
            b'2' => Some((i, Day, i + 1)),
            b'_' if at(i, b"_2") => {
                if at(i + 1, b"2006") {
                    // `_2006` is a literal `_` and a year.
                    Some((i + 1, LongYear, i + 5))
                } else {
                    Some((i, UnderDay, i + 2))
                }
            }
            b'_' if at(i, b"__2") => Some((i, UnderYearDay, i + 3)),
            b'3' => Some((i, Hour12, i + 1)),
            b'4' => Some((i, Minute, i + 1)),
            b'5' => Some((i, Second, i + 1)),
            b'P' if at(i, b"PM") => Some((i, PM, i + 2)),
            b'p' if at(i, b"pm") => Some((i, Pm, i + 2)),
            b'-' => [
                (&b"-070000"[..], NumSecondsTZ),
                (b"-07:00:00", NumColonSecondsTZ),
                (b"-0700", NumTZ),
                (b"-07:00", NumColonTZ),
                (b"-07", NumShortTZ),
            ]
            .into_iter()
            .find(|(s, _)| at(i, s))
            .map(|(s, std)| (i, std, i + s.len())),
            b'Z' => [
                (&b"Z070000"[..], Iso8601SecondsTZ),
                (b"Z07:00:00", Iso8601ColonSecondsTZ),
                (b"Z0700", Iso8601TZ),
                (b"Z07:00", Iso8601ColonTZ),
                (b"Z07", Iso8601ShortTZ),
            ]
            .into_iter()
            .find(|(s, _)| at(i, s))
            .map(|(s, std)| (i, std, i + s.len())),
            c @ (b'.' | b',') if matches!(layout.get(i + 1), Some(b'0' | b'9')) => {
                let ch = layout[i + 1];
                let mut j = i + 1;
                while layout.get(j) == Some(&ch) {
                    j += 1;
                }
                // Only a run of digits that ends there is a fractional second.
                (!is_digit(layout, j)).then(|| {
                    let std = Frac {
                        trim: ch == b'9',
                        digits: (j - (i + 1)) & 0xfff,
                        sep: c,
                    };
                    (i, std, j)
                })
            }
            _ => None,
        };
        if let Some((start, std, end)) = found {
            return (&layout[..start], Some(std), &layout[end..]);
        }
    }
    (layout, None, &[])
}

/// Go's `appendInt`: decimal, zero-padded to `width`.
fn append_int(b: &mut Vec<u8>, x: i64, width: usize) {
    let u = if x < 0 {
        b.push(b'-');
        x.unsigned_abs()
    } else {
        x as u64
    };
    let digits = u.to_string();
    for _ in digits.len()..width {
        b.push(b'0');
    }
    b.extend_from_slice(digits.as_bytes());
}

/// `t.In(zone).Format(layout)`, failing once the output passes `limit` bytes.
fn format(t: &GoTime, zone: &Zone, mut layout: &[u8], limit: usize) -> R<Vec<u8>> {
    use Std::*;
    let (name, offset, abs) = locabs(t, zone)?;
    let days = days(abs);
    let mut ymd: Option<(i64, i64, i64)> = None;
    let mut yd: Option<i64> = None;
    let mut clock: Option<(i64, i64, i64)> = None;
    let mut b = Vec::with_capacity(layout.len().min(limit) + 10);
    while !layout.is_empty() {
        if b.len() > limit {
            return Err(format!("more than {limit} bytes"));
        }
        let (prefix, std, suffix) = next_std_chunk(layout);
        b.extend_from_slice(prefix);
        let Some(std) = std else { break };
        layout = suffix;
        if std.needs_date() && ymd.is_none() {
            ymd = Some(date(days));
        }
        if matches!(std, UnderYearDay | ZeroYearDay) && yd.is_none() {
            yd = Some(yday(days));
        }
        if std.needs_clock() && clock.is_none() {
            let s = (abs % SECONDS_PER_DAY as u64) as i64;
            clock = Some((s / 3600, s % 3600 / 60, s % 60));
        }
        let (year, month, day) = ymd.unwrap_or_default();
        let yday = yd.unwrap_or_default();
        let (hour, min, sec) = clock.unwrap_or_default();
        let month_name = LONG_MONTHS
            .get((month - 1) as usize)
            .copied()
            .unwrap_or("%!Month");
        match std {
            Year => append_int(&mut b, year.wrapping_abs() % 100, 2),
            LongYear => append_int(&mut b, year, 4),
            Month => b.extend_from_slice(&month_name.as_bytes()[..3]),
            LongMonth => b.extend_from_slice(month_name.as_bytes()),
            NumMonth => append_int(&mut b, month, 0),
            ZeroMonth => append_int(&mut b, month, 2),
            WeekDay | LongWeekDay => {
                let name = LONG_DAYS[(days.wrapping_add(3) % 7) as usize];
                let name = if std == WeekDay { &name[..3] } else { name };
                b.extend_from_slice(name.as_bytes());
            }
            Day => append_int(&mut b, day, 0),
            UnderDay => {
                if day < 10 {
                    b.push(b' ');
                }
                append_int(&mut b, day, 0);
            }
            ZeroDay => append_int(&mut b, day, 2),
            UnderYearDay => {
                if yday < 100 {
                    b.push(b' ');
                    if yday < 10 {
                        b.push(b' ');
                    }
                }
                append_int(&mut b, yday, 0);
            }
            ZeroYearDay => append_int(&mut b, yday, 3),
            Hour => append_int(&mut b, hour, 2),
            Hour12 | ZeroHour12 => {
                let hr = if hour % 12 == 0 { 12 } else { hour % 12 };
                append_int(&mut b, hr, if std == Hour12 { 0 } else { 2 });
            }
            Minute => append_int(&mut b, min, 0),
            ZeroMinute => append_int(&mut b, min, 2),
            Second => append_int(&mut b, sec, 0),
            ZeroSecond => append_int(&mut b, sec, 2),
            PM => b.extend_from_slice(if hour >= 12 { b"PM" } else { b"AM" }),
            Pm => b.extend_from_slice(if hour >= 12 { b"pm" } else { b"am" }),
            Iso8601TZ
            | Iso8601ColonTZ
            | Iso8601SecondsTZ
            | Iso8601ShortTZ
            | Iso8601ColonSecondsTZ
                if offset == 0 =>
            {
                b.push(b'Z');
            }
            Iso8601TZ
            | Iso8601ColonTZ
            | Iso8601SecondsTZ
            | Iso8601ShortTZ
            | Iso8601ColonSecondsTZ
            | NumTZ
            | NumColonTZ
            | NumSecondsTZ
            | NumShortTZ
            | NumColonSecondsTZ => {
                let mut zone = offset / 60;
                let mut absoffset = offset;
                if zone < 0 {
                    b.push(b'-');
                    zone = -zone;
                    absoffset = -absoffset;
                } else {
                    b.push(b'+');
                }
                append_int(&mut b, zone / 60, 2);
                if matches!(
                    std,
                    Iso8601ColonTZ | NumColonTZ | Iso8601ColonSecondsTZ | NumColonSecondsTZ
                ) {
                    b.push(b':');
                }
                if !matches!(std, NumShortTZ | Iso8601ShortTZ) {
                    append_int(&mut b, zone % 60, 2);
                }
                if matches!(
                    std,
                    Iso8601SecondsTZ | NumSecondsTZ | NumColonSecondsTZ | Iso8601ColonSecondsTZ
                ) {
                    if matches!(std, NumColonSecondsTZ | Iso8601ColonSecondsTZ) {
                        b.push(b':');
                    }
                    append_int(&mut b, absoffset % 60, 2);
                }
            }
            TZ => {
                if !name.is_empty() {
                    b.extend_from_slice(name.as_bytes());
                } else {
                    let mut zone = offset / 60;
                    if zone < 0 {
                        b.push(b'-');
                        zone = -zone;
                    } else {
                        b.push(b'+');
                    }
                    append_int(&mut b, zone / 60, 2);
                    append_int(&mut b, zone % 60, 2);
                }
            }
            Frac { trim, digits, sep } => {
                if trim && (digits == 0 || t.nsec == 0) {
                    continue;
                }
                let start = b.len();
                b.push(sep);
                append_int(&mut b, i64::from(t.nsec), 9);
                if digits < 9 {
                    b.truncate(b.len() - 9 + digits);
                }
                if trim {
                    while b.len() > start && b.last() == Some(&b'0') {
                        b.pop();
                    }
                    if b.len() > start && b.last() == Some(&sep) {
                        b.pop();
                    }
                }
            }
        }
    }
    if b.len() > limit {
        return Err(format!("more than {limit} bytes"));
    }
    Ok(b)
}

/// The `quote` of Go's time package (not strconv's): bytes outside printable ASCII as `\x..`.
fn quote(s: &[u8]) -> String {
    let mut out = String::from("\"");
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if !(b' '..0x80).contains(&c) {
            let width = if c < 0x80 { 1 } else { utf8_width(&s[i..]) };
            for &byte in &s[i..i + width] {
                out.push_str(&format!("\\x{byte:02x}"));
            }
            i += width;
        } else {
            if c == b'"' || c == b'\\' {
                out.push('\\');
            }
            out.push(char::from(c));
            i += 1;
        }
    }
    out.push('"');
    out
}

/// Bytes of the UTF-8 sequence at the start of `s`, or 1 for an invalid byte (Go's `range`).
fn utf8_width(s: &[u8]) -> usize {
    let n = match s[0] {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return 1,
    };
    match s.get(..n).map(std::str::from_utf8) {
        Some(Ok(_)) => n,
        _ => 1,
    }
}

fn parse_error(layout: &[u8], value: &[u8], elem: &[u8], value_elem: &[u8]) -> String {
    format!(
        "parsing time {} as {}: cannot parse {} as {}",
        quote(value),
        quote(layout),
        quote(value_elem),
        quote(elem)
    )
}

fn message_error(value: &[u8], message: &str) -> String {
    format!("parsing time {}{message}", quote(value))
}

/// Go's `getnum`: one or two digits (exactly two when `fixed`).
fn getnum(s: &[u8], fixed: bool) -> Option<(i64, &[u8])> {
    if !is_digit(s, 0) {
        return None;
    }
    if !is_digit(s, 1) {
        if fixed {
            return None;
        }
        return Some((i64::from(s[0] - b'0'), &s[1..]));
    }
    Some((
        i64::from(s[0] - b'0') * 10 + i64::from(s[1] - b'0'),
        &s[2..],
    ))
}

fn getnum3(s: &[u8], fixed: bool) -> Option<(i64, &[u8])> {
    let mut n = 0;
    let mut i = 0;
    while i < 3 && is_digit(s, i) {
        n = n * 10 + i64::from(s[i] - b'0');
        i += 1;
    }
    if i == 0 || (fixed && i != 3) {
        return None;
    }
    Some((n, &s[i..]))
}

/// Go's `skip`: the literal `prefix`, any run of spaces in it matching any run in `value`.
fn skip<'a>(mut value: &'a [u8], mut prefix: &[u8]) -> Result<&'a [u8], &'a [u8]> {
    while let Some(&p) = prefix.first() {
        if p == b' ' {
            if value.first().is_some_and(|&c| c != b' ') {
                return Err(value);
            }
            prefix = trim_spaces(prefix);
            value = trim_spaces(value);
            continue;
        }
        if value.first() != Some(&p) {
            return Err(value);
        }
        prefix = &prefix[1..];
        value = &value[1..];
    }
    Ok(value)
}

fn trim_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b' ').count();
    &s[n..]
}

/// Go's `lookup`: the first name of `tab` that `val` starts with, ignoring ASCII case.
fn lookup_name<'a>(tab: &[&str], val: &'a [u8]) -> Option<(i64, &'a [u8])> {
    tab.iter().enumerate().find_map(|(i, name)| {
        let n = name.len();
        let head = val.get(..n)?;
        let same = head.iter().zip(name.as_bytes()).all(|(&a, &b)| {
            a == b || {
                let (la, lb) = (a | 0x20, b | 0x20);
                la == lb && la.is_ascii_lowercase()
            }
        });
        same.then(|| (i as i64, &val[n..]))
    })
}

/// Go's `leadingInt`: the leading digits, `None` past 2^63.
fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if x > (1 << 63) / 10 {
            return None;
        }
        x = x * 10 + u64::from(s[i] - b'0');
        if x > 1 << 63 {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

/// Go's `atoi` in the time package.
fn atoi(s: &[u8]) -> Option<i64> {
    let (neg, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (q, rem) = leading_int(s)?;
    if !rem.is_empty() {
        return None;
    }
    let x = q as i64;
    Some(if neg { x.wrapping_neg() } else { x })
}

/// Go's `parseNanoseconds`: `value` starts with the separator; `nbytes` includes it.
fn parse_nanoseconds(value: &[u8], nbytes: usize) -> Result<i64, Option<&'static str>> {
    if !matches!(value.first(), Some(b'.' | b',')) {
        return Err(None);
    }
    let nbytes = nbytes.min(10);
    let ns = atoi(&value[1..nbytes]).ok_or(None)?;
    if ns < 0 {
        return Err(Some("fractional second"));
    }
    Ok(ns * 10i64.pow((10 - nbytes) as u32))
}

fn parse_sign_offset(value: &[u8]) -> usize {
    if !matches!(value.first(), Some(b'-' | b'+')) {
        return 0;
    }
    match leading_int(&value[1..]) {
        Some((x, rem)) if rem.len() != value.len() - 1 && x <= 23 => value.len() - rem.len(),
        _ => 0,
    }
}

/// Go's `parseTimeZone`: the length of a zone abbreviation at the start of `value`.
fn parse_time_zone(value: &[u8]) -> Option<usize> {
    if value.len() < 3 {
        return None;
    }
    if value.starts_with(b"ChST") || value.starts_with(b"MeST") {
        return Some(4);
    }
    if value.starts_with(b"GMT") {
        return Some(
            3 + if value.len() > 3 {
                parse_sign_offset(&value[3..])
            } else {
                0
            },
        );
    }
    if matches!(value[0], b'+' | b'-') {
        let n = parse_sign_offset(value);
        return (n > 0).then_some(n);
    }
    let upper = value
        .iter()
        .take(6)
        .take_while(|c| c.is_ascii_uppercase())
        .count();
    match upper {
        5 if value[4] == b'T' => Some(5),
        4 if value[3] == b'T' || value.starts_with(b"WITA") => Some(4),
        3 => Some(3),
        _ => None,
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in(month: i64, year: i64) -> i64 {
    if month == 2 {
        return if is_leap(year) { 29 } else { 28 };
    }
    30 + ((month + (month >> 3)) & 1)
}

fn days_before(month: i64) -> i64 {
    (214 * month - 211) / 7 + if month >= 3 { -2 } else { 0 }
}

/// Go's `dateToAbsDays` (for the bounded dates a parse yields).
fn date_to_abs_days(year: i64, month: i64, day: i64) -> u64 {
    let jan_feb = u64::from(month < 3);
    let amonth = month as u64 + 12 * jan_feb;
    let y = (year as u64)
        .wrapping_sub(jan_feb)
        .wrapping_add(ABSOLUTE_YEARS);
    let ayday = (979 * amonth - 2919) >> 5;
    let century = y / 100;
    let cyear = y % 100;
    let cday = 1461 * cyear / 4;
    let centurydays = 146_097 * century / 4;
    centurydays.wrapping_add(((cday + ayday) as i64 + day - 1) as u64)
}

/// `time.Date` in UTC for a parsed (already range-checked) date and clock.
fn utc_date(fields: [i64; 7]) -> GoTime {
    let [year, month, day, hour, min, sec, nsec] = fields;
    let unix = (date_to_abs_days(year, month, day) as i64)
        .wrapping_mul(SECONDS_PER_DAY)
        .wrapping_add(hour * 3600 + min * 60 + sec)
        .wrapping_add(ABSOLUTE_TO_UNIX);
    GoTime {
        sec: unix.wrapping_add(UNIX_TO_INTERNAL),
        nsec: nsec as u32,
        loc: Loc::Utc,
    }
}

/// `time.ParseInLocation(layout, value, time.Local)`, with Go's error messages.
fn parse(alayout: &[u8], avalue: &[u8]) -> R<GoTime> {
    use Std::*;
    let (mut layout, mut value) = (alayout, avalue);
    let (mut am, mut pm) = (false, false);
    let (mut year, mut month, mut day, mut yday) = (0i64, -1i64, -1i64, -1i64);
    let (mut hour, mut min, mut sec, mut nsec) = (0i64, 0i64, 0i64, 0i64);
    let mut utc = false;
    let mut zone_offset: Option<i64> = None;
    let mut zone_name: &[u8] = b"";
    loop {
        let (prefix, std, suffix) = next_std_chunk(layout);
        let stdstr = &layout[prefix.len()..layout.len() - suffix.len()];
        value = match skip(value, prefix) {
            Ok(v) => v,
            Err(v) => return Err(parse_error(alayout, avalue, prefix, v)),
        };
        let Some(std) = std else {
            if !value.is_empty() {
                return Err(message_error(
                    avalue,
                    &format!(": extra text: {}", quote(value)),
                ));
            }
            break;
        };
        layout = suffix;
        let hold = value;
        let mut range_err: Option<&str> = None;
        let ok: Option<()> = (|| {
            match std {
                Year => {
                    let p = value.get(..2)?;
                    value = &value[2..];
                    year = atoi(p)?;
                    year += if year >= 69 { 1900 } else { 2000 };
                }
                LongYear => {
                    if value.len() < 4 || !is_digit(value, 0) {
                        return None;
                    }
                    let p = &value[..4];
                    value = &value[4..];
                    year = atoi(p)?;
                }
                Month | LongMonth => {
                    let tab: Vec<&str> = LONG_MONTHS
                        .iter()
                        .map(|m| if std == Month { &m[..3] } else { *m })
                        .collect();
                    let (m, rest) = lookup_name(&tab, value)?;
                    month = m + 1;
                    value = rest;
                }
                NumMonth | ZeroMonth => {
                    let (m, rest) = getnum(value, std == ZeroMonth)?;
                    month = m;
                    value = rest;
                    if month <= 0 || month > 12 {
                        range_err = Some("month");
                    }
                }
                WeekDay | LongWeekDay => {
                    let tab: Vec<&str> = LONG_DAYS
                        .iter()
                        .map(|d| if std == WeekDay { &d[..3] } else { *d })
                        .collect();
                    value = lookup_name(&tab, value)?.1;
                }
                Day | UnderDay | ZeroDay => {
                    if std == UnderDay && value.first() == Some(&b' ') {
                        value = &value[1..];
                    }
                    let (d, rest) = getnum(value, std == ZeroDay)?;
                    day = d;
                    value = rest;
                }
                UnderYearDay | ZeroYearDay => {
                    for _ in 0..2 {
                        if std == UnderYearDay && value.first() == Some(&b' ') {
                            value = &value[1..];
                        }
                    }
                    let (d, rest) = getnum3(value, std == ZeroYearDay)?;
                    yday = d;
                    value = rest;
                }
                Hour => {
                    let (h, rest) = getnum(value, false)?;
                    hour = h;
                    value = rest;
                    if hour >= 24 {
                        range_err = Some("hour");
                    }
                }
                Hour12 | ZeroHour12 => {
                    let (h, rest) = getnum(value, std == ZeroHour12)?;
                    hour = h;
                    value = rest;
                    if hour > 12 {
                        range_err = Some("hour");
                    }
                }
                Minute | ZeroMinute => {
                    let (m, rest) = getnum(value, std == ZeroMinute)?;
                    min = m;
                    value = rest;
                    if min >= 60 {
                        range_err = Some("minute");
                    }
                }
                Second | ZeroSecond => {
                    let (s, rest) = getnum(value, std == ZeroSecond)?;
                    sec = s;
                    value = rest;
                    if sec >= 60 {
                        range_err = Some("second");
                        return Some(());
                    }
                    // A fractional second the layout does not ask for.
                    if value.len() >= 2 && matches!(value[0], b'.' | b',') && is_digit(value, 1) {
                        if let (_, Some(Frac { .. }), _) = next_std_chunk(layout) {
                            return Some(());
                        }
                        let mut n = 2;
                        while is_digit(value, n) {
                            n += 1;
                        }
                        match parse_nanoseconds(value, n) {
                            Ok(ns) => nsec = ns,
                            Err(Some(r)) => range_err = Some(r),
                            Err(None) => return None,
                        }
                        value = &value[n..];
                    }
                }
                PM | Pm => {
                    let p = value.get(..2)?;
                    value = &value[2..];
                    let (pm_s, am_s): (&[u8], &[u8]) = if std == PM {
                        (b"PM", b"AM")
                    } else {
                        (b"pm", b"am")
                    };
                    if p == pm_s {
                        pm = true;
                    } else if p == am_s {
                        am = true;
                    } else {
                        return None;
                    }
                }
                Iso8601TZ
                | Iso8601ShortTZ
                | Iso8601ColonTZ
                | Iso8601SecondsTZ
                | Iso8601ColonSecondsTZ
                    if value.first() == Some(&b'Z') =>
                {
                    value = &value[1..];
                    utc = true;
                }
                Iso8601TZ
                | Iso8601ShortTZ
                | Iso8601ColonTZ
                | Iso8601SecondsTZ
                | Iso8601ColonSecondsTZ
                | NumTZ
                | NumShortTZ
                | NumColonTZ
                | NumSecondsTZ
                | NumColonSecondsTZ => {
                    let (sign, hh, mm, ss): (u8, &[u8], &[u8], &[u8]);
                    match std {
                        Iso8601ColonTZ | NumColonTZ => {
                            if value.len() < 6 || value[3] != b':' {
                                return None;
                            }
                            (sign, hh, mm, ss) = (value[0], &value[1..3], &value[4..6], b"00");
                            value = &value[6..];
                        }
                        NumShortTZ | Iso8601ShortTZ => {
                            if value.len() < 3 {
                                return None;
                            }
                            (sign, hh, mm, ss) = (value[0], &value[1..3], b"00", b"00");
                            value = &value[3..];
                        }
                        Iso8601ColonSecondsTZ | NumColonSecondsTZ => {
                            if value.len() < 9 || value[3] != b':' || value[6] != b':' {
                                return None;
                            }
                            (sign, hh, mm, ss) =
                                (value[0], &value[1..3], &value[4..6], &value[7..9]);
                            value = &value[9..];
                        }
                        Iso8601SecondsTZ | NumSecondsTZ => {
                            if value.len() < 7 {
                                return None;
                            }
                            (sign, hh, mm, ss) =
                                (value[0], &value[1..3], &value[3..5], &value[5..7]);
                            value = &value[7..];
                        }
                        _ => {
                            if value.len() < 5 {
                                return None;
                            }
                            (sign, hh, mm, ss) = (value[0], &value[1..3], &value[3..5], b"00");
                            value = &value[5..];
                        }
                    }
                    // Go sets the range error before it looks at the parse errors.
                    let hr = getnum(hh, true).map(|x| x.0);
                    let m = hr.and(getnum(mm, true).map(|x| x.0));
                    let s = m.and(getnum(ss, true).map(|x| x.0));
                    let (hr, m, s) = (hr.unwrap_or(0), m.unwrap_or(0), s.unwrap_or(0));
                    if hr > 24 {
                        range_err = Some("time zone offset hour");
                    }
                    if m > 60 {
                        range_err = Some("time zone offset minute");
                    }
                    if s > 60 {
                        range_err = Some("time zone offset second");
                    }
                    let off = (hr * 60 + m) * 60 + s;
                    zone_offset = Some(off);
                    let digits_ok = getnum(hh, true).is_some()
                        && getnum(mm, true).is_some()
                        && getnum(ss, true).is_some();
                    match sign {
                        b'+' => {}
                        b'-' => zone_offset = Some(-off),
                        _ => return None,
                    }
                    if !digits_ok {
                        return None;
                    }
                }
                TZ => {
                    if value.starts_with(b"UTC") {
                        utc = true;
                        value = &value[3..];
                        return Some(());
                    }
                    let n = parse_time_zone(value)?;
                    zone_name = &value[..n];
                    value = &value[n..];
                }
                Frac {
                    trim: false,
                    digits,
                    ..
                } => {
                    let ndigit = 1 + digits;
                    if value.len() < ndigit {
                        return None;
                    }
                    match parse_nanoseconds(value, ndigit) {
                        Ok(ns) => nsec = ns,
                        Err(Some(r)) => range_err = Some(r),
                        Err(None) => return None,
                    }
                    value = &value[ndigit..];
                }
                Frac { trim: true, .. } => {
                    if value.len() < 2
                        || !matches!(value[0], b'.' | b',')
                        || !value[1].is_ascii_digit()
                    {
                        return Some(());
                    }
                    let mut i = 0;
                    while i + 1 < value.len() && value[i + 1].is_ascii_digit() {
                        i += 1;
                    }
                    match parse_nanoseconds(value, 1 + i) {
                        Ok(ns) => nsec = ns,
                        Err(Some(r)) => range_err = Some(r),
                        Err(None) => return None,
                    }
                    value = &value[1 + i..];
                }
            }
            Some(())
        })();
        if let Some(r) = range_err {
            return Err(format!("parsing time {}: {r} out of range", quote(avalue)));
        }
        if ok.is_none() {
            return Err(parse_error(alayout, avalue, stdstr, hold));
        }
    }
    if pm && hour < 12 {
        hour += 12;
    } else if am && hour == 12 {
        hour = 0;
    }
    if yday >= 0 {
        let mut d = 0;
        let mut m = 0;
        if is_leap(year) {
            if yday == 31 + 29 {
                m = 2;
                d = 29;
            } else if yday > 31 + 29 {
                yday -= 1;
            }
        }
        if !(1..=365).contains(&yday) {
            return Err(message_error(avalue, ": day-of-year out of range"));
        }
        if m == 0 {
            m = (yday - 1) / 31 + 1;
            if days_before(m + 1) < yday {
                m += 1;
            }
            d = yday - days_before(m);
        }
        if month >= 0 && month != m {
            return Err(message_error(avalue, ": day-of-year does not match month"));
        }
        month = m;
        if day >= 0 && day != d {
            return Err(message_error(avalue, ": day-of-year does not match day"));
        }
        day = d;
    } else {
        if month < 0 {
            month = 1;
        }
        if day < 0 {
            day = 1;
        }
    }
    if day < 1 || day > days_in(month, year) {
        return Err(message_error(avalue, ": day out of range"));
    }
    let mut t = utc_date([year, month, day, hour, min, sec, nsec]);
    if utc {
        return Ok(t);
    }
    // The local zone is UTC: an offset of 0 (under no name but "UTC") is the local zone.
    let local_name = b"UTC";
    if let Some(offset) = zone_offset {
        t.sec = t.sec.wrapping_sub(offset);
        t.loc = if offset == 0 && (zone_name.is_empty() || zone_name == local_name) {
            Loc::Local
        } else {
            Loc::Fixed(Rc::new((
                String::from_utf8_lossy(zone_name).into_owned(),
                offset,
            )))
        };
        return Ok(t);
    }
    if !zone_name.is_empty() {
        // An abbreviation the local zone (UTC) does not use: a zone of that name at offset 0,
        // or GMT±h.
        let offset = if zone_name.len() > 3 && zone_name.starts_with(b"GMT") {
            atoi(&zone_name[3..]).unwrap_or(0) * 3600
        } else {
            0
        };
        t.loc = Loc::Fixed(Rc::new((
            String::from_utf8_lossy(zone_name).into_owned(),
            offset,
        )));
        return Ok(t);
    }
    t.loc = Loc::Local;
    Ok(t)
}

/// `time.ParseDuration`, with Go's error messages.
pub fn parse_duration(orig: &[u8]) -> R<i64> {
    let invalid = || format!("time: invalid duration {}", quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut d: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let before = s.len();
        let (v, rest) = leading_int(s).ok_or_else(invalid)?;
        s = rest;
        let pre = before != s.len();
        let (mut f, mut scale, mut post) = (0u64, 1f64, false);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let before = s.len();
            // Go's leadingFraction: digits past 2^63 only stop adding precision.
            let mut overflow = false;
            let mut i = 0;
            while i < s.len() && s[i].is_ascii_digit() {
                if !overflow {
                    if f > (i64::MAX as u64) / 10 {
                        overflow = true;
                    } else {
                        let y = f * 10 + u64::from(s[i] - b'0');
                        if y > 1 << 63 {
                            overflow = true;
                        } else {
                            f = y;
                            scale *= 10.0;
                        }
                    }
                }
                i += 1;
            }
            s = &s[i..];
            post = before != s.len();
        }
        if !pre && !post {
            return Err(invalid());
        }
        let i = s
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if i == 0 {
            return Err(format!("time: missing unit in duration {}", quote(orig)));
        }
        let u = &s[..i];
        s = &s[i..];
        let unit: u64 = match u {
            b"ns" => 1,
            b"us" | b"\xc2\xb5s" | b"\xce\xbcs" => 1_000, // us, µs (micro sign), μs (mu)
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    quote(u),
                    quote(orig)
                ));
            }
        };
        if v > (1u64 << 63) / unit {
            return Err(invalid());
        }
        let mut v = v * unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > 1 << 63 {
                return Err(invalid());
            }
        }
        d += v;
        if d > 1 << 63 {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((d as i64).wrapping_neg());
    }
    if d > i64::MAX as u64 {
        return Err(invalid());
    }
    Ok(d as i64)
}

/// `time.Duration(d).String()`.
pub fn duration_string(d: i64) -> String {
    let mut u = d.unsigned_abs();
    let mut out = String::new();
    // Digits of u / 10^prec after the point, trailing zeros dropped; returns u / 10^prec.
    let frac = |out: &mut String, v: u64, prec: u32| -> u64 {
        let p = 10u64.pow(prec);
        let f = v % p;
        if f != 0 {
            let digits = format!("{f:0width$}", width = prec as usize);
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
        v / p
    };
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0 => return "0s".to_owned(),
            1..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        let mut tail = String::new();
        let whole = frac(&mut tail, u, prec);
        out = format!("{whole}{tail}{unit}");
    } else {
        let mut tail = String::new();
        u = frac(&mut tail, u, 9);
        let secs = format!("{}{tail}s", u % 60);
        u /= 60;
        out.push_str(&if u > 0 {
            let mins = u % 60;
            u /= 60;
            if u > 0 {
                format!("{u}h{mins}m{secs}")
            } else {
                format!("{mins}m{secs}")
            }
        } else {
            secs
        });
    }
    if d < 0 {
        out.insert(0, '-');
    }
    out
}

/// sprig's `durationRound`: the largest whole unit (y = 365 days, mo = 30 days) strictly
/// below the duration.
fn duration_round(d: i64) -> String {
    let u = d.unsigned_abs();
    const H: u64 = 3_600_000_000_000;
    for (size, unit) in [
        (H * 24 * 365, "y"),
        (H * 24 * 30, "mo"),
        (H * 24, "d"),
        (H, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
    ] {
        if u > size {
            return format!("{}{unit}", u / size);
        }
    }
    "0s".to_owned()
}

/// `strconv.ParseInt(s, 10, 64)` as sprig's `duration` uses it: the clamped value when out
/// of range, 0 when not a number.
fn parse_int_clamped(s: &[u8]) -> i64 {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    let mut v: i128 = 0;
    for &c in digits {
        v = (v * 10 + i128::from(c - b'0')).min(i128::from(u64::MAX));
    }
    let v = if neg { -v } else { v };
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn string_arg(v: &Value) -> R<Rc<zeroize::Zeroizing<Vec<u8>>>> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        Value::Missing => Err("invalid value; expected string".to_owned()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

/// A `time.Time` parameter.
fn time_arg(v: &Value) -> R<Rc<GoTime>> {
    match v {
        Value::Time(t) => Ok(t.clone()),
        Value::Missing => Err("invalid value; expected time.Time".to_owned()),
        other => Err(format!(
            "wrong type for value; expected time.Time; got {}",
            other.type_name()
        )),
    }
}

/// The `interface{}` date of sprig's `dateInZone`: a time, or Unix seconds; anything else is
/// `time.Now()` in Go, which Signet refuses.
fn date_arg(name: &str, v: &Value) -> R<GoTime> {
    match v {
        Value::Time(t) => Ok((**t).clone()),
        Value::Int(i) | Value::Int64(i) => Ok(GoTime::unix(*i)),
        other => Err(format!(
            "{CLOCK}: {name} of a {} is the current time in Go (only a time or Unix seconds is rendered)",
            match other {
                Value::Missing => "<nil>",
                o => o.type_name(),
            }
        )),
    }
}

fn date_in_zone(name: &str, layout: &[u8], date: &Value, zone: &[u8]) -> R<Value> {
    let t = date_arg(name, date)?;
    let out = format(&t, &load_location(zone)?, layout, super::MAX_RENDERED_BYTES)?;
    Ok(str_value(out))
}

/// `t.GoString()` (`printf "%#v"`).
pub fn go_string(t: &GoTime) -> String {
    let (zone, loc) = match &t.loc {
        Loc::Utc => (Zone::Utc, "time.UTC".to_owned()),
        Loc::Local => (Zone::Local, "time.Local".to_owned()),
        Loc::Fixed(f) => (
            Zone::Fixed(f.0.clone(), f.1),
            format!("time.Location({})", quote(f.0.as_bytes())),
        ),
    };
    let abs = locabs(t, &zone).map_or(0, |(_, _, abs)| abs);
    let (year, month, day) = date(days(abs));
    let s = (abs % SECONDS_PER_DAY as u64) as i64;
    format!(
        "time.Date({year}, time.{}, {day}, {}, {}, {}, {}, {loc})",
        LONG_MONTHS[(month - 1) as usize],
        s / 3600,
        s % 3600 / 60,
        s % 60,
        t.nsec
    )
}

/// Go's methods of `time.Time` a template calls (`$t.Year`, `$t.Format "2006"`): `a` are the
/// arguments, `constant[i]` whether argument `i` is an integer constant of the template (only a
/// constant converts to a `time.Duration`).
pub(super) fn method(t: &GoTime, name: &str, a: &[Value], constant: &[bool]) -> R<Value> {
    let want = |n: usize| arity(name, a, n);
    let other = |v: &Value| -> R<Rc<GoTime>> { time_arg(v) };
    let instant = |u: &GoTime| (u.sec, u.nsec);
    let int = |n: i64| -> R<Value> {
        want(0)?;
        Ok(Value::Int(n))
    };
    let abs = locabs(t, &t.loc.zone())?.2;
    let clock = (abs % SECONDS_PER_DAY as u64) as i64;
    let unix = t.unix_sec();
    Ok(match name {
        "Year" => int(date(days(abs)).0)?,
        "Day" => int(date(days(abs)).2)?,
        "YearDay" => int(yday(days(abs)))?,
        "Hour" => int(clock / 3600)?,
        "Minute" => int(clock % 3600 / 60)?,
        "Second" => int(clock % 60)?,
        "Nanosecond" => int(i64::from(t.nsec))?,
        "Unix" | "UnixMilli" | "UnixMicro" | "UnixNano" => {
            want(0)?;
            let ns = i64::from(t.nsec);
            Value::Int64(match name {
                "Unix" => unix,
                "UnixMilli" => unix.wrapping_mul(1_000).wrapping_add(ns / 1_000_000),
                "UnixMicro" => unix.wrapping_mul(1_000_000).wrapping_add(ns / 1_000),
                _ => unix.wrapping_mul(1_000_000_000).wrapping_add(ns),
            })
        }
        "String" => {
            want(0)?;
            str_value(t.to_go_string())
        }
        "IsZero" => {
            want(0)?;
            Value::Bool(t.sec == 0 && t.nsec == 0)
        }
        // Every location a time value holds has one offset.
        "IsDST" => {
            want(0)?;
            Value::Bool(false)
        }
        "UTC" | "Local" => {
            want(0)?;
            let mut u = t.clone();
            u.loc = if name == "UTC" { Loc::Utc } else { Loc::Local };
            Value::Time(Rc::new(u))
        }
        "Format" => {
            want(1)?;
            let layout = string_arg(&a[0])?;
            str_value(format(
                t,
                &t.loc.zone(),
                &layout,
                super::MAX_RENDERED_BYTES,
            )?)
        }
        "Add" => {
            want(1)?;
            match (&a[0], constant.first()) {
                (Value::Int(d), Some(true)) => Value::Time(Rc::new(t.add(*d))),
                (other, _) => {
                    return Err(format!(
                        "wrong type for value; expected time.Duration; got {}",
                        other.type_name()
                    ));
                }
            }
        }
        "Before" | "After" | "Equal" | "Compare" => {
            want(1)?;
            let (x, y) = (instant(t), instant(&*other(&a[0])?));
            match name {
                "Before" => Value::Bool(x < y),
                "After" => Value::Bool(x > y),
                "Equal" => Value::Bool(x == y),
                _ => Value::Int(x.cmp(&y) as i64),
            }
        }
        "Month" | "Weekday" => {
            return Err(format!(
                "the method {name} of time.Time is not supported (Go prints a name and compares a number); use date \"January\" or date \"Monday\""
            ));
        }
        "AddDate" | "AppendBinary" | "AppendFormat" | "AppendText" | "Clock" | "Date"
        | "GoString" | "GobEncode" | "ISOWeek" | "In" | "Location" | "MarshalBinary"
        | "MarshalJSON" | "MarshalText" | "Round" | "Sub" | "Truncate" | "Zone" | "ZoneBounds" => {
            return Err(format!("the method {name} of time.Time is not supported"));
        }
        _ => return Err(format!("can't evaluate field {name} in type time.Time")),
    })
}

/// Renders sprig's date function `name`, or `None` when `name` is not one.
pub(super) fn call(name: &str, a: &[Value]) -> Option<R<Value>> {
    let want = |n: usize| arity(name, a, n);
    let result = (|| -> R<Value> {
        Ok(match name {
            "date" => {
                want(2)?;
                date_in_zone(name, &string_arg(&a[0])?, &a[1], b"Local")?
            }
            "dateInZone" | "date_in_zone" => {
                want(3)?;
                let (layout, zone) = (string_arg(&a[0])?, string_arg(&a[2])?);
                date_in_zone(name, &layout, &a[1], &zone)?
            }
            "htmlDate" => {
                want(1)?;
                date_in_zone(name, b"2006-01-02", &a[0], b"Local")?
            }
            "htmlDateInZone" => {
                want(2)?;
                date_in_zone(name, b"2006-01-02", &a[0], &string_arg(&a[1])?)?
            }
            "dateModify" | "date_modify" | "mustDateModify" | "must_date_modify" => {
                want(2)?;
                let (d, t) = (string_arg(&a[0])?, time_arg(&a[1])?);
                match parse_duration(&d) {
                    Ok(d) => Value::Time(Rc::new(t.add(d))),
                    Err(e) if name.starts_with("must") => return Err(e),
                    Err(_) => Value::Time(t),
                }
            }
            "duration" => {
                want(1)?;
                let n = match &a[0] {
                    Value::Str(s) => parse_int_clamped(s),
                    Value::Int64(n) => *n,
                    _ => 0,
                };
                str_value(duration_string(n.wrapping_mul(1_000_000_000)))
            }
            "durationRound" => {
                want(1)?;
                let d = match &a[0] {
                    Value::Str(s) => parse_duration(s).unwrap_or(0),
                    Value::Int64(n) => *n,
                    Value::Time(_) => {
                        return Err(format!(
                            "{CLOCK}: durationRound of a time is the time since it (time.Since)"
                        ));
                    }
                    _ => 0,
                };
                str_value(duration_round(d))
            }
            "toDate" | "mustToDate" => {
                want(2)?;
                let (layout, v) = (string_arg(&a[0])?, string_arg(&a[1])?);
                match parse(&layout, &v) {
                    Ok(t) => Value::Time(Rc::new(t)),
                    Err(e) if name == "mustToDate" => return Err(e),
                    Err(_) => Value::Time(Rc::new(GoTime::zero())),
                }
            }
            "unixEpoch" => {
                want(1)?;
                str_value(time_arg(&a[0])?.unix_sec().to_string())
            }
            _ => return Err(String::new()),
        })
    })();
    match result {
        Err(e) if e.is_empty() => None,
        r => Some(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use zeroize::Zeroizing;

    /// Templates and what Go 1.26 with sprig v3.3.0 renders for them (the scratch oracle
    /// executes them as Bitnami v0.40.0 does, on a host whose local zone is UTC): the output, or
    /// the error. "depends on the clock" marks what Go renders from `time.Now()`.
    const GO: &str = include_str!("testdata/sprig_time_go.json");

    #[test]
    fn every_case_renders_as_go_renders_it() {
        let golden: serde_json::Value = serde_json::from_str(GO).unwrap();
        let values: BTreeMap<String, Zeroizing<Vec<u8>>> = golden["values"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Zeroizing::new(v.as_str().unwrap().as_bytes().to_vec()),
                )
            })
            .collect();
        let mut wrong = Vec::new();
        for case in golden["cases"].as_array().unwrap() {
            let template = case[0].as_str().unwrap();
            let ours = super::super::render("t", template, &values);
            match (case[1].as_str(), case[2].as_str(), ours) {
                (Some(go), _, Ok(out)) if out.as_slice() == go.as_bytes() => {}
                (None, Some(go), Err(e)) => {
                    // Go's message after "error calling f: " must be ours, unless ours is
                    // withheld (an argument is not a constant); then the message of
                    // `mustDateModify` is checked directly. Go's other errors (an argument of
                    // the wrong type) are worded by the template engine, not by these functions.
                    let e = e.to_string();
                    let want = go
                        .split_once("error calling ")
                        .and_then(|(_, m)| m.split_once(": "))
                        .map(|(_, m)| m);
                    let ok = match want {
                        None => true,
                        Some(want) if e.contains("withheld") => template
                            .strip_prefix("{{ mustDateModify ")
                            .and_then(|rest| rest.split_once(" (toDate"))
                            .and_then(|(lit, _)| serde_json::from_str::<String>(lit).ok())
                            .is_none_or(|d| {
                                parse_duration(d.as_bytes()).err().as_deref() == Some(want)
                            }),
                        Some(want) => e.contains(want),
                    };
                    if !ok {
                        wrong.push(format!("{template}\n  go:   {go}\n  ours: {e}"));
                    }
                }
                (go, go_err, ours) => wrong.push(format!(
                    "{template}\n  go:   {go:?} {go_err:?}\n  ours: {:?}",
                    ours.map(|o| String::from_utf8_lossy(&o).into_owned())
                        .map_err(|e| e.to_string())
                )),
            }
        }
        assert!(
            wrong.is_empty(),
            "{} differ:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }

    fn render(t: &str) -> Result<String, String> {
        let values: BTreeMap<String, Zeroizing<Vec<u8>>> =
            [("user".to_owned(), Zeroizing::new(b"admin".to_vec()))].into();
        super::super::render("t", t, &values)
            .map(|o| String::from_utf8_lossy(&o).into_owned())
            .map_err(|e| e.to_string())
    }

    /// Go's `date` of a string, a float or a missing item formats `time.Now()`: refused, with a
    /// message that shows no value even when the argument is one.
    #[test]
    fn what_would_read_the_clock_is_refused_without_showing_values() {
        for t in [
            r#"{{ date "2006" .user }}"#,
            r#"{{ dateInZone "2006" .missing "UTC" }}"#,
            r#"{{ htmlDate 1.5 }}"#,
            r#"{{ htmlDateInZone nil "UTC" }}"#,
            r#"{{ durationRound (toDate "2006" "2020") }}"#,
        ] {
            let e = render(t).unwrap_err();
            assert!(e.contains("depends on the clock"), "{t}: {e}");
            assert!(!e.contains("admin"), "{t}: {e}");
        }
        let e = render(r#"{{ mustToDate "2006" .user }}"#).unwrap_err();
        assert!(e.contains("withheld") && !e.contains("admin"), "{e}");
    }

    /// A layout may be as long as a value (or `repeat` makes it): the formatted text is bounded
    /// like everything a template renders, and both directions stay linear.
    #[test]
    fn huge_layouts_are_bounded_and_fast() {
        let started = std::time::Instant::now();
        // Each "2006" prints a 12-digit year here: 3.6 MB, never printed, still refused.
        let e =
            render(r#"{{ $x := date (repeat 300000 "2006") 9223372036854775807 }}ok"#).unwrap_err();
        assert!(e.contains("more than 1048576 bytes"), "{e}");
        // Formatting itself stops at the bound instead of building all of it first.
        let far = GoTime::unix(i64::MAX);
        let e = format(&far, &Zone::Utc, "2006".repeat(300_000).as_bytes(), 1 << 20);
        assert_eq!(e.err().as_deref(), Some("more than 1048576 bytes"));
        let layout = "Jan _2 15:04:05.000 ".repeat(50_000);
        let t = GoTime::unix(1_700_000_000);
        let out = format(&t, &Zone::Utc, layout.as_bytes(), usize::MAX).unwrap();
        assert_eq!(out.len(), layout.len());
        let parsed = parse(layout.as_bytes(), &out).unwrap();
        // Go: toDate of that layout and text | unixEpoch (year 0, November 14, 22:13:20).
        assert_eq!(parsed.unix_sec(), -62_139_664_000);
        let seconds = format!("5{}", "x".repeat(1 << 20));
        assert!(
            parse(
                seconds.as_bytes(),
                format!("7.{}", "9".repeat(1 << 20)).as_bytes()
            )
            .is_err()
        );
        assert!(parse_duration(format!("{}s", "9".repeat(1 << 20)).as_bytes()).is_err());
        assert!(parse_duration(format!("1.{}s", "9".repeat(1 << 20)).as_bytes()).is_ok());
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    /// A named zone knows years -9999 to 9999; beyond them Go extends the zone's last rule, which
    /// Signet refuses rather than guesses.
    #[test]
    fn a_named_zone_outside_its_years_is_an_error() {
        let e =
            render(r#"{{ dateInZone "2006" 9223372036854775807 "Europe/Paris" }}"#).unwrap_err();
        assert!(e.contains("outside the years"), "{e}");
        assert_eq!(
            render(r#"{{ dateInZone "2006" 9223372036854775807 "UTC" }}"#).unwrap(),
            "292277026596"
        );
    }

    const LAYOUT_PARTS: &[&str] = &[
        "2006",
        "06",
        "01",
        "1",
        "Jan",
        "January",
        "02",
        "2",
        "_2",
        "__2",
        "002",
        "Mon",
        "Monday",
        "15",
        "03",
        "3",
        "04",
        "4",
        "05",
        "5",
        "PM",
        "pm",
        "MST",
        "Z07:00",
        "-0700",
        "Z07",
        "-07:00:00",
        "Z070000",
        ".000",
        ".999",
        ",9",
        ".0000000000",
        " ",
        "-",
        ":",
        "x",
    ];
    const VALUE_PARTS: &[&str] = &[
        "2020",
        "99",
        "12",
        "1",
        "13",
        "0",
        "Feb",
        "february",
        "29",
        " 5",
        "366",
        "Tue",
        "23",
        "24",
        "60",
        "PM",
        "am",
        "UTC",
        "EST",
        "GMT+3",
        "GMT-30",
        "+05:30",
        "-0700",
        "Z",
        "+99",
        ".5",
        ",123456789012",
        ".-1",
        " ",
        "-",
        ":",
        "x",
        "\u{fffd}",
        "\u{b5}s",
        "h",
        "ms",
        "9223372036854775808",
    ];

    proptest::proptest! {
        /// Any layout, value, instant, offset and duration: no panic, and output within bounds.
        #[test]
        fn hostile_times_layouts_and_durations_never_panic(
            layout in proptest::collection::vec(proptest::sample::select(LAYOUT_PARTS), 0..12),
            value in proptest::collection::vec(proptest::sample::select(VALUE_PARTS), 0..12),
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
            sec in proptest::prelude::any::<i64>(),
            nsec in 0u32..1_000_000_000,
            offset in -100_000i64..100_000,
            d in proptest::prelude::any::<i64>(),
        ) {
            let (layout, value) = (layout.concat(), value.concat());
            let t = GoTime { sec, nsec, loc: Loc::Fixed(Rc::new(("".to_owned(), offset))) };
            for zone in [Zone::Utc, Zone::Fixed("X".to_owned(), offset), load_location(b"Asia/Tokyo").unwrap()] {
                if let Ok(out) = format(&t, &zone, layout.as_bytes(), 4 * 1024) {
                    proptest::prop_assert!(out.len() <= 4 * 1024);
                }
                let _ = format(&t, &zone, &raw, 64);
            }
            let _ = parse(layout.as_bytes(), value.as_bytes());
            let _ = parse(&raw, value.as_bytes());
            let _ = parse(layout.as_bytes(), &raw);
            let _ = parse_duration(value.as_bytes());
            let _ = parse_duration(&raw);
            let _ = (duration_string(d), duration_round(d), parse_int_clamped(&raw));
            let moved = t.add(d);
            let _ = (moved.to_go_string(), moved.to_json(), moved.same(&t), quote(&raw));
        }
    }
}
