"""Japanese calendar arithmetic on plain day numbers, as the Rust SDK (plugins/sdk/src/date.rs)
does it, for program plugins written in Python.

A day is an int: days since 1970-01-01 in Japan time, the number the host hands to plugins.
The readings follow Japanese law, and both SDKs pass the same table (plugins/sdk/dates.json):

- Age (年齢計算ニ関スル法律 with 民法143条): a person reaches age N at the end of the day
  before their N-th birthday; someone born on 2/29 reaches it on 2/28 in common years.
- 「生後N月に至る日」: the day before the same date N months later, or that month's last day
  when the date does not exist (born 7/31 → 生後2月 on 9/30).
- 「…に至るまで」 and 「N歳未満」 include that day (the ministry's notice of 2014-03-11,
  「定期の予防接種における対象者の解釈について」).
- Intervals: 「N日以上の間隔をおいて」 leaves N whole days between doses; 「N月以上」 runs
  out as 生後N月 does (民法143条2項).
- 妊娠週数: the due date is 40 weeks 0 days.
- 年度 runs from April 1; a child enters school on the first April 1 after reaching 6
  (学校教育法17条), so April 1 births are a year ahead (早生まれ).
"""

from typing import Optional, Tuple

# A pregnancy is 40 weeks 0 days on its due date.
FULL_TERM_DAYS = 280

# The Japanese eras, newest first: name, the letter municipal exports write, first day.
ERAS = (
    ("令和", "R", (2019, 5, 1)),
    ("平成", "H", (1989, 1, 8)),
    ("昭和", "S", (1926, 12, 25)),
    ("大正", "T", (1912, 7, 30)),
    ("明治", "M", (1868, 10, 23)),
)


def is_leap_year(year: int) -> bool:
    return (year % 4 == 0 and year % 100 != 0) or year % 400 == 0


def days_in_month(year: int, month: int) -> int:
    if month in (1, 3, 5, 7, 8, 10, 12):
        return 31
    if month in (4, 6, 9, 11):
        return 30
    if month == 2:
        return 29 if is_leap_year(year) else 28
    return 0


def _days_from_civil(year: int, month: int, day: int) -> int:
    # Howard Hinnant's algorithm, as the Rust SDK; Python's // and % floor as div_euclid does.
    year = year - 1 if month <= 2 else year
    era = year // 400
    year_of_era = year - era * 400
    month_from_march = (month + 9) % 12
    day_of_year = (153 * month_from_march + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def ymd(day: int) -> Tuple[int, int, int]:
    """The calendar date (year, month 1–12, day 1–31) of a day number."""
    shifted = day + 719_468
    era = shifted // 146_097
    day_of_era = shifted - era * 146_097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_from_march = (5 * day_of_year + 2) // 153
    date = day_of_year - (153 * month_from_march + 2) // 5 + 1
    month = month_from_march + 3 if month_from_march < 10 else month_from_march - 9
    return year_of_era + era * 400 + (1 if month <= 2 else 0), month, date


def from_ymd(year: int, month: int, day: int) -> Optional[int]:
    """The day number of a calendar date, or None when the date does not exist."""
    if not 1 <= month <= 12 or day == 0 or day > days_in_month(year, month):
        return None
    return _days_from_civil(year, month, day)


def parse_iso(text: str) -> Optional[int]:
    """Reads YYYY-MM-DD."""
    parts = text.strip().split("-", 2)
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return None
    return from_ymd(int(parts[0]), int(parts[1]), int(parts[2]))


def to_iso(day: int) -> str:
    year, month, date = ymd(day)
    return f"{year:04}-{month:02}-{date:02}"


def _shift_month(year: int, month: int, months: int) -> Tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def add_months_clamped(day: int, months: int) -> int:
    """The same date `months` months later (earlier when negative), or that month's last day."""
    year, month, date = ymd(day)
    target_year, target_month = _shift_month(year, month, months)
    return _days_from_civil(target_year, target_month, min(date, days_in_month(target_year, target_month)))


def months_reached(birth: int, months: int) -> int:
    """「生後N月に至る日」: the day before the same date N months later, or that month's last
    day when the date does not exist."""
    year, month, date = ymd(birth)
    target_year, target_month = _shift_month(year, month, months)
    last = days_in_month(target_year, target_month)
    if date > last:
        return _days_from_civil(target_year, target_month, last)
    return _days_from_civil(target_year, target_month, date) - 1


def age_reached(birth: int, years: int) -> int:
    """満N歳に達する日: the day before the birthday (年齢計算ニ関スル法律)."""
    return months_reached(birth, years * 12)


def last_day_up_to_months(birth: int, months: int) -> int:
    """The last day of 「生後N月に至るまで」, that day included (予防接種法施行令 第1条の3 別表)."""
    return months_reached(birth, months)


def last_day_under_age(birth: int, years: int) -> int:
    """The last day of 「N歳未満」 or 「満N歳に達しない」: the day before the N-th birthday."""
    return age_reached(birth, years)


def after_interval_of_days(dose: int, days: int) -> int:
    """The first day of the next dose after 「N日以上の間隔をおいて」: N whole days between."""
    return dose + days + 1


def after_interval_of_months(dose: int, months: int) -> int:
    """The first day of the next dose after 「N月以上の間隔をおいて」 (民法 第143条 第2項)."""
    return months_reached(dose, months) + 1


def age_on(birth: int, day: int) -> int:
    """The age in completed years, by law, on `day`; zero before the first is reached."""
    years = max(ymd(day)[0] - ymd(birth)[0] + 1, 0)
    while years > 0 and age_reached(birth, years) > day:
        years -= 1
    return years


def months_on(birth: int, day: int) -> int:
    """The completed months of life (生後N月) on `day`."""
    birth_year, birth_month, _ = ymd(birth)
    year, month, _ = ymd(day)
    months = max((year - birth_year) * 12 + month - birth_month + 1, 0)
    while months > 0 and months_reached(birth, months) > day:
        months -= 1
    return months


def fiscal_year(day: int) -> int:
    """The 年度 that `day` falls in, named by the year of its April 1."""
    year, month, _ = ymd(day)
    return year if month >= 4 else year - 1


def fiscal_year_start(year: int) -> int:
    return _days_from_civil(year, 4, 1)


def fiscal_year_end(year: int) -> int:
    """年度末: March 31 of the next calendar year."""
    return _days_from_civil(year + 1, 3, 31)


def weeks_on(birth: int, day: int) -> int:
    """The completed weeks after birth (生後N週); negative before it."""
    return (day - birth) // 7


def gestational_age_on(due: int, day: int) -> Tuple[int, int]:
    """妊娠N週M日 on `day`, as (weeks, days), when `due` is the 40 weeks 0 days."""
    elapsed = day - due + FULL_TERM_DAYS
    return elapsed // 7, elapsed % 7


def gestational_week_starts(due: int, weeks: int) -> int:
    """The day a pregnancy due on `due` is N weeks 0 days."""
    return due - FULL_TERM_DAYS + 7 * weeks


def age_at_fiscal_year_end(birth: int, year: int) -> int:
    """The age by law on 年度末 of the 年度 `year`, as screenings count it."""
    return max(year - fiscal_year(birth - 1), 0)


def latest_birth_for_age_at_fiscal_year_end(year: int, years: int) -> int:
    """The latest birth day of someone at least `years` old on 年度末 of `year`."""
    return fiscal_year_start(year + 1 - years)


def fiscal_year_reaching(birth: int, years: int) -> int:
    """「N歳となる日の属する年度」."""
    return fiscal_year(age_reached(birth, years))


def first_march_31_after_reaching(birth: int, years: int) -> int:
    """「N歳に達する日以後の最初の3月31日」, when child benefits end."""
    return fiscal_year_end(fiscal_year_reaching(birth, years))


def school_entry(birth: int) -> int:
    """The first April 1 after the day a child reaches 6 (学校教育法17条)."""
    year, month, date = ymd(age_reached(birth, 6) + 1)
    return fiscal_year_start(year if (month, date) <= (4, 1) else year + 1)


def school_grade_on(birth: int, day: int) -> int:
    """The school grade on `day` from primary school's first; 0 or less before school."""
    return fiscal_year(day) - fiscal_year(school_entry(birth)) + 1


def era_format(day: int) -> str:
    """The date as official letters write it: 令和7年4月1日, the first year 元年."""
    year, month, date = ymd(day)
    for name, _, first in ERAS:
        if (year, month, date) >= first:
            era_year = year - first[0] + 1
            return f"{name}{'元' if era_year == 1 else era_year}年{month}月{date}日"
    return f"{year}年{month}月{date}日"


def from_era(era: str, era_year: int, month: int, date: int) -> Optional[int]:
    """The day of an era date (the era's name or letter; year 1 is 元年), or None when the
    era is unknown, the date does not exist or falls outside the era."""
    position = next(
        (index for index, (name, letter, _) in enumerate(ERAS) if era == name or era.upper() == letter), None
    )
    if position is None or era_year < 1:
        return None
    first = ERAS[position][2]
    day = from_ymd(first[0] + era_year - 1, month, date)
    if day is None or day < from_ymd(*first):
        return None
    if position > 0 and day >= from_ymd(*ERAS[position - 1][2]):
        return None
    return day
