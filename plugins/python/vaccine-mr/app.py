"""麻しん風しん(MR)混合ワクチンの定期接種 (予防接種法施行令 第1条の3 別表), written in Python: the
same rule as the Rust crate plugins/vaccine-mr, which must pass that crate's cases.yaml
unchanged in the sandbox. 1期 from 生後12月 until 生後24月 is reached, that day included;
2期 in the school year before primary school. Residents are told when each period opens,
unless the history records dose 1 (1期) or dose 2 (2期).

Build: componentize-py -d wit/program.wit -w program componentize app
       -p plugins/python/vaccine-mr -p plugins/sdk-python -o vaccine-mr.wasm
"""

import wit_world
from wit_world.imports import types

from oshirase_sdk import dates

CODE = "vaccine-mr"
# Born before this many months before today, a person has passed every period.
CLOSED_BY_MONTHS = 7 * 12

TEMPLATE = (
    "【{{program}}】お子さんが麻しん風しん(MR)ワクチン{what}\u3002"
    "{when}協力医療機関に予約してください。無料で受けられるのは{{deadline}}までです。"
    "千葉市 医療政策課 https://www.city.chiba.jp/ お問い合わせ: {{contact}}"
)


def phase_1(birth):
    return dates.months_reached(birth, 12), dates.last_day_up_to_months(birth, 24)


def phase_2(birth):
    school_entry = dates.school_entry(birth)
    return dates.fiscal_year_start(dates.fiscal_year(school_entry) - 1), school_entry - 1


# Each period: its occasion, the dose that closes it, its window for a birth day.
PERIODS = (("phase-1", 1, phase_1), ("phase-2", 2, phase_2))


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.ProgramInfo:
        return types.ProgramInfo(
            code=CODE,
            name="麻しん風しん(MR)予防接種",
            division="医療政策課",
            contact="各区保健福祉センター 健康課",
            category=types.Category.VACCINATION,
            schedule="0 0 9 * * *",
            source_url="https://laws.e-gov.go.jp/law/323CO0000000197",
            fields=[types.Field.BIRTH_DAY, types.Field.IMMUNIZATIONS],
            kinds=[],
            settings=[],
            occasions=[
                types.Occasion(
                    key="phase-1",
                    title="1期(1歳)",
                    template=TEMPLATE.format(
                        what="1期の定期接種を受けられる年齢になりました",
                        when="1歳になったら早めの接種をおすすめします。",
                    ),
                ),
                types.Occasion(
                    key="phase-2",
                    title="2期(小学校入学前の1年間)",
                    template=TEMPLATE.format(
                        what="2期の定期接種の対象になりました", when="小学校入学前の1年間が接種期間です。"
                    ),
                ),
            ],
        )

    def evaluate(self, today, settings, population) -> types.Notices:
        events = population.immunizations
        # The doses of this vaccine each person has, as a set of (person, dose).
        code = events.codes.index(CODE) if CODE in events.codes else None
        done = {
            (person, count)
            for person, code_index, count in zip(events.person, events.code, events.count)
            if code_index == code
        }
        born_too_early = dates.add_months_clamped(today, -CLOSED_BY_MONTHS - 1)
        notices = types.Notices(person=[], occasion=[], instance=[], send_on=[], expires_on=[], reason=[], reasons=[])
        reasons = {}
        for person, birth in enumerate(population.birth_day):
            if birth > today or birth < born_too_early:
                continue
            for occasion, (key, dose, window) in enumerate(PERIODS):
                opens, closes = window(birth)
                if not opens <= today <= closes or (person, dose) in done:
                    continue
                text = f"{dates.to_iso(opens)}から{dates.to_iso(closes)}までの期間、記録なし"
                if text not in reasons:
                    reasons[text] = len(notices.reasons)
                    notices.reasons.append(text)
                notices.person.append(person)
                notices.occasion.append(occasion)
                notices.instance.append(0)
                notices.send_on.append(opens)
                notices.expires_on.append(closes)
                notices.reason.append(reasons[text])
        return notices
