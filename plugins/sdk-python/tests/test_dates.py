"""The Python SDK's dates pass the table the Rust SDK passes (plugins/sdk/dates.json)."""

import json
import pathlib
import unittest

from oshirase_sdk import dates

TABLE = json.loads((pathlib.Path(__file__).resolve().parents[2] / "sdk" / "dates.json").read_text("utf-8"))


def argument(value):
    """A date of the table as a day number; anything else as it is."""
    if isinstance(value, str) and len(value) == 10 and value[4] == "-":
        return dates.parse_iso(value)
    return value


def answer(value):
    """What a function answered, as the table writes it."""
    if isinstance(value, tuple):
        return list(value)
    return value


class SharedDateTable(unittest.TestCase):
    def test_every_function_of_the_table(self):
        # The answers that are dates, by function.
        date_answers = {
            "from_ymd", "add_months_clamped", "months_reached", "age_reached", "last_day_up_to_months", "last_day_under_age",
            "after_interval_of_days", "after_interval_of_months", "school_entry", "fiscal_year_start",
            "fiscal_year_end", "gestational_week_starts", "latest_birth_for_age_at_fiscal_year_end",
            "first_march_31_after_reaching", "from_era",
        }
        checked = 0
        for name, cases in TABLE.items():
            if name == "about":
                continue
            function = getattr(dates, name)
            for case in cases:
                *arguments, expected = case
                actual = function(*map(argument, arguments))
                if name in date_answers and actual is not None:
                    actual = dates.to_iso(actual)
                with self.subTest(function=name, case=case):
                    self.assertEqual(answer(actual), expected)
                checked += 1
        self.assertGreater(checked, 100)

    def test_day_numbers_round_trip_through_the_calendar(self):
        self.assertEqual(dates.parse_iso("1970-01-01"), 0)
        self.assertEqual(dates.parse_iso("2000-03-01"), 11_017)
        for number in range(-200_000, 200_000, 7):
            self.assertEqual(dates.from_ymd(*dates.ymd(number)), number)

    def test_age_at_fiscal_year_end_is_the_age_by_law_on_march_31(self):
        for year in (1999, 2024, 2027):
            march_31 = dates.fiscal_year_end(year)
            for birth in range(dates.parse_iso("1950-01-01"), dates.parse_iso("2030-12-31")):
                self.assertEqual(dates.age_at_fiscal_year_end(birth, year), dates.age_on(birth, march_31))


if __name__ == "__main__":
    unittest.main()
