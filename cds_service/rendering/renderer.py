"""The card renderer: a card kind's typed inputs into a CDS Hooks card, worded by the content's
templates (`cards/`), with its sources, links, suggestions and override reasons."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, get_args

from ..clinical.cramp_context import CrampContext
from ..clinical.electrolytes import Finding, result_range
from ..clinical.results import LabResult
from ..content.loader import Content, ContentError
from ..content.schema import CheckReason, SourceSpec, SuggestionSpec
from ..content.wording import beside_cuts, range_bound
from ..protocol import Action, Card, Coding, Link, Source, Suggestion
from .inputs import KIND_INPUTS, CardInput, unknown_names, values
from .views import FindingView, ResultView, date_text

# The card extension's keys, namespaced as the specification asks of extensions.
CONTENT_VERSION_EXTENSION = "org.vitamin-d-cramps.content-version"
PROFILE_EXTENSION = "org.vitamin-d-cramps.threshold-profile"

SUMMARY_LIMIT = 139  # CDS Hooks: a summary SHALL be under 140 characters


def _single_blank_lines(text: str) -> str:
    """Template sections left out leave runs of blank lines (str.replace: a tenth of a regex's time)."""
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


def _evidence(values: dict[str, object]) -> str:
    """The results a card shows (each as the card shows it, with its date), in one text: a newer
    result, or one read differently, changes it; the same results in another order do not."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, ResultView):
            found.add(f"{value.code}|{value.shown}|{value.date}|{value.problem or ''}")
        elif isinstance(value, FindingView):
            found.add(f"{value.name}|{value.shown}|{value.date}|{value.flag}")
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    for value in values.values():
        walk(value)
    return "\n".join(sorted(found))


class CardRenderer:
    def __init__(self, content: Content, profile_name: str, trend_url: str | None = None) -> None:
        """`profile_name`: the threshold profile's; `trend_url`: the SMART app's launch URL, which the
        cards that show a trend link to."""
        self.trend_url = trend_url
        self._content = content
        self._catalogue = content.catalogue
        self._notes = content.catalogue.result_notes
        self._profile = profile = content.profile(profile_name)
        # On every card: the content and the profile it was decided by, so that an EHR (and anyone
        # reading a card it kept) can tell which rules spoke (CDS Hooks 2.0.1, Extensions).
        self._extension = {CONTENT_VERSION_EXTENSION: content.version, PROFILE_EXTENSION: profile_name}
        analytes = content.analytes
        self._measures = analytes.measures
        self._decimals = {analyte: spec.decimals for analyte, spec in analytes.units.items()}
        self._canonical = {analyte: spec.canonical for analyte, spec in analytes.units.items()}
        reason_system = self._catalogue.systems.override_reason
        self._override_reasons = {
            kind: [Coding(system=reason_system, code=r.code, display=r.display) for r in self._catalogue.reasons(kind)]
            for kind in self._catalogue.cards
        }
        self._orderables = analytes.orderables
        self._ranges = analytes.ranges
        self._units_agree = {a: len(set(spec.factors().values())) == 1 for a, spec in analytes.units.items()}
        payne = content.thresholds.payne
        self._cuts: dict[str, tuple[float, ...]] = {
            "vitamin_d": (
                profile.deficient_below,
                profile.insufficient_below,
                profile.high_above,
                profile.very_high_above,
            ),
            payne.albumin: (payne.reliable_albumin, payne.reference_albumin),
        }
        # What every template may name besides its kind's inputs (rendering/inputs.py).
        self._globals = {
            "profile": profile,
            "checked": {reason: self.analyte_names(analytes.checked(reason)) for reason in get_args(CheckReason)},
        }
        # What a kind's cards share whatever the patient: their source and links, built once.
        self._sources = {
            kind: Source(
                label=(source := self._source(spec.source)).label,
                url=source.url,
                topic=Coding(system=self._catalogue.systems.card_kind, code=kind),
            )
            for kind, spec in self._catalogue.cards.items()
        }
        trend = Link(label=self._catalogue.trend_link_label, url=trend_url, type="smart") if trend_url else None
        self._links = {
            kind: [
                Link(label=src.label, url=src.url, type="absolute")
                for src in map(self._source, spec.links)
                if src.url is not None
            ]
            + ([trend] if trend is not None and spec.trend_link else [])
            for kind, spec in self._catalogue.cards.items()
        }
        self._chosen: dict[tuple[str, frozenset[str]], list[SuggestionSpec]] = {}
        self._check_inputs()

    def _check_inputs(self) -> None:
        """Each kind's templates name only what its inputs give (rendering/inputs.py)."""
        for kind in self._catalogue.cards:
            if kind not in KIND_INPUTS:
                raise ContentError(f"catalogue.yaml: cards.{kind} is no card kind the service decides")
            detail = self._content.details[kind]
            env = detail.environment
            assert env.loader is not None and detail.name is not None
            sources = [self._catalogue.cards[kind].summary, env.loader.get_source(env, detail.name)[0]]
            if unknown := unknown_names(kind, env, sources):
                raise ContentError(
                    f"cards.{kind}: its templates name {', '.join(unknown)}, which "
                    f"{KIND_INPUTS[kind].__name__} (cds_service/rendering/inputs.py) does not give"
                )

    def view(self, result: LabResult, *, old: bool = False) -> ResultView:
        """The result as the laboratory reported it first, at its precision, then converted and
        rounded to the precision a clinician reads, never across a cut-point (rulebook, "Units and
        precision")."""
        cmp = result.comparator or ""
        reported = result.reported_text
        if result.value is None:
            short = shown = "could not be interpreted"
        elif result.unit_unreported:
            # Units that agree give the value a unit; otherwise only the judgement was certain.
            unit = result.unit if self._units_agree[result.analyte] else "(unit not reported)"
            short = shown = f"{cmp}{reported} {unit}"
        elif result.reported_unit is not None:
            converted = self._rounded(result.value, result.analyte, self._cuts_of(result))
            short = f"{cmp}{reported} {result.reported_unit}"
            shown = f"{short} ({cmp}{converted} {result.unit})"
        else:
            short = shown = f"{cmp}{reported} {result.unit}"
        flag = f"{result.flag.code} ({result.flag.display})" if result.flag is not None else None
        proxy, status_unknown = result.role == "proxy", result.status == "unknown"
        wording = self._notes
        notes = (
            wording.flag.format(flag=flag) if flag else None,
            wording.unit_unreported if result.unit_unreported else None,
            wording.proxy if proxy else None,
            wording.status_unknown if status_unknown else None,
            result.problem,
            wording.old if old else None,
        )
        return ResultView(
            name=result.name,
            code=result.code,
            shown=shown,
            short=short,
            date=date_text(result.effective),
            proxy=proxy,
            status_unknown=status_unknown,
            problem=result.problem,
            old=old,
            flag=flag,
            unit_unreported=result.unit_unreported,
            note="; ".join(n for n in notes if n),
        )

    def _cuts_of(self, result: LabResult) -> tuple[float, ...]:
        """The cut-points a shown value must not be rounded onto or across."""
        measure_range = result_range(result, self._ranges)
        if measure_range is None:
            return self._cuts.get(result.analyte, ())
        return tuple(
            c
            for c in (measure_range.low, measure_range.high, measure_range.critical_low, measure_range.critical_high)
            if c is not None
        )

    def _rounded(self, value: float, analyte: str, cuts: tuple[float, ...]) -> str:
        return beside_cuts(value, self._decimals[analyte], cuts)

    def finding_view(self, finding: Finding, context: CrampContext | None = None) -> FindingView:
        unit = finding.unit or self._canonical[finding.result.analyte]
        as_measured = self.view(finding.result)
        r = finding.range
        cuts = tuple(c for c in (r.low, r.high, r.critical_low, r.critical_high) if c is not None)
        lab = finding.result.flag
        if finding.value is None:  # abnormal by the laboratory's flag alone
            short = shown = f"flagged {lab.code}" if lab is not None else as_measured.short
        elif finding.albumin is None or finding.estimate is not None:
            short, shown = as_measured.short, as_measured.shown
        else:
            short = shown = f"{self._rounded(finding.value, finding.result.analyte, cuts)} {unit}"
        places = self._decimals[finding.result.analyte]  # a range as laboratories write it: 3.5-5.0
        low, high = (range_bound(b, places) if b is not None else None for b in (r.low, r.high))
        if low is not None and high is not None:
            span = f"{low}-{high} {unit}"
        elif low is not None:
            span = f"at least {low} {unit}"
        else:
            span = f"at most {high} {unit}"
        albumin = finding.albumin
        direction = finding.flag if finding.flag in ("low", "high") else None
        medicines = context.causes.get((finding.electrolyte, direction), ()) if context and direction else ()
        return FindingView(
            name=self._measures[finding.measure].name,
            abbreviation=self._measures[finding.measure].abbreviation,
            shown=shown,
            short=short,
            date=date_text(finding.result.effective),
            flag=finding.flag or "normal",
            critical=finding.critical,
            range=span,
            range_from_laboratory=r.from_laboratory,
            total=as_measured.shown if albumin else None,
            albumin=self.view(albumin).shown if albumin else None,
            superseded_by=self.view(finding.superseded_by) if finding.superseded_by else None,
            electrolyte=finding.electrolyte,
            by_laboratory=finding.by_laboratory,
            lab_flag=f"{lab.display} ({lab.code})" if lab is not None else None,
            lab_flag_code=lab.code if lab is not None else None,
            problem=finding.result.problem,
            estimate=f"{self._rounded(finding.estimate, finding.result.analyte, cuts)} {unit}"
            if finding.estimate is not None
            else None,
            medicines=medicines,
        )

    def finding_rows(self, finding: Finding) -> list[ResultView]:
        """The data rows behind a finding: a newer result that could not be read, the result, and
        the albumin it was corrected with."""
        return [self.view(r) for r in (finding.superseded_by, finding.result, finding.albumin) if r is not None]

    def analyte_names(self, analytes: Iterable[str]) -> list[str]:
        return [self._measures[a].name for a in analytes]

    def _source(self, ref: str) -> SourceSpec:
        return self._content.source(ref, self._profile)

    def render(
        self,
        kind: str,
        patient_id: str,
        inputs: CardInput,
        *,
        hypercalcaemia: bool = False,
        order_for: Iterable[str] = (),
        suggestions: list[Suggestion] | None = None,
        cite: Iterable[str] = (),
    ) -> Card:
        """One card of `kind` from its inputs; `order_for` names the analytes whose orders to
        suggest, `suggestions` adds those a service built itself (around a draft order), and `cite`
        the sources of what this card says beyond its kind's own links."""
        if not isinstance(inputs, KIND_INPUTS[kind]):
            raise TypeError(f"{kind} is rendered from {KIND_INPUTS[kind].__name__}, not {type(inputs).__name__}")
        spec = self._catalogue.cards[kind]
        variables = values(inputs) | self._globals
        suggestions = [
            self._order_suggestion(s, patient_id) for s in self._order_choice(kind, frozenset(order_for))
        ] + (suggestions or [])
        indicator = spec.indicator
        if inputs.critical and spec.indicator_critical:
            indicator = spec.indicator_critical
        elif hypercalcaemia and spec.indicator_hypercalcaemia:
            indicator = spec.indicator_hypercalcaemia
        summary = self._summary(kind, variables)
        if not summary:
            raise ContentError(f"cards.{kind}.summary: rendered empty")
        # Built, not validated: every part is the renderer's or the content's, checked at start, and
        # each field meets its model's constraints by construction (tests/rules.py checks answers).
        card = Card.model_construct(
            uuid=uuid.uuid4(),
            summary=summary,
            detail=_single_blank_lines(self._content.details[kind].render(variables)).strip() or None,
            indicator=indicator,
            source=self._sources[kind],
            suggestions=suggestions or None,
            selectionBehavior="any" if suggestions else None,
            overrideReasons=self._override_reasons[kind],
            links=self._with_links(kind, cite) or None,
            extension=self._extension,
        )
        return card.built_on(lambda: _evidence(variables))

    def _with_links(self, kind: str, cite: Iterable[str]) -> list[Link]:
        links = list(self._links[kind])
        for ref in cite:
            source = self._source(ref)
            if source.url is not None and all(link.url != source.url for link in links):
                links.append(Link(label=source.label, url=source.url, type="absolute"))
        return links

    def _summary(self, kind: str, variables: dict[str, object]) -> str:
        """On one line, and cut to the CDS Hooks limit should a long value stretch it."""
        summary = " ".join(self._content.summaries[kind].render(variables).split())
        if len(summary) > SUMMARY_LIMIT:
            summary = summary[: SUMMARY_LIMIT - 1].rstrip() + "…"
        return summary

    def _order_choice(self, kind: str, wanted: frozenset[str]) -> list[SuggestionSpec]:
        """The tests to suggest for the wanted analytes, worked out once per kind and set of
        analytes (a few dozen sets in all: the content's analytes bound them)."""
        key = (kind, wanted)
        if (chosen := self._chosen.get(key)) is None:
            chosen = self._chosen[key] = self._choose(self._catalogue.cards[kind].suggestions, wanted)
        return chosen

    def _choose(self, offered: list[SuggestionSpec], wanted: frozenset[str]) -> list[SuggestionSpec]:
        """For each wanted analyte, the offered test that covers the most wanted analytes and the
        fewest others (content order breaks ties): a basic metabolic panel when potassium and
        calcium are wanted, calcium alone when only calcium is."""
        chosen: list[SuggestionSpec] = []
        for analyte in sorted(wanted):
            covering = [s for s in offered if analyte in self._orderables[s.orderable].covers]
            if not covering:
                continue
            best = min(
                covering,
                key=lambda s: (
                    -len(wanted.intersection(self._orderables[s.orderable].covers)),
                    len(set(self._orderables[s.orderable].covers) - wanted),
                    offered.index(s),
                ),
            )
            if best not in chosen:
                chosen.append(best)
        return sorted(chosen, key=offered.index)

    def delete_suggestion(self, kind: str, resource_id: str, label: str = "suggestion_label") -> Suggestion:
        """The suggestion of an order card that removes the draft it is about; `label` names the
        catalogue field that words it."""
        spec = self._catalogue.cards[kind]
        text = getattr(spec, label)
        assert text and spec.delete_description  # checked when the content loads
        delete = Action(type="delete", description=spec.delete_description, resourceId=resource_id)
        return Suggestion(label=text, uuid=uuid.uuid4(), isRecommended=True, actions=[delete])

    def replace_suggestion(
        self, kind: str, resource_id: str | None, subject: dict[str, Any], **references: dict[str, Any]
    ) -> Suggestion:
        """The suggestion of an order card that drafts the content's replacement test, and removes
        the draft it is about when that has an id to name."""
        spec = self._catalogue.cards[kind]
        assert spec.suggestion_label and spec.create_description and spec.replacement  # checked at load
        actions = []
        if resource_id is not None:
            assert spec.delete_description
            actions.append(Action(type="delete", description=spec.delete_description, resourceId=resource_id))
        request = self.service_request(spec.replacement, subject, **references)
        actions.append(Action(type="create", description=spec.create_description, resource=request))
        return Suggestion(label=spec.suggestion_label, uuid=uuid.uuid4(), isRecommended=True, actions=actions)

    def service_request(self, orderable: str, subject: dict[str, Any], **references: dict[str, Any]) -> dict[str, Any]:
        """A draft ServiceRequest (FHIR R4) for one of the content's orderable tests."""
        test = self._orderables[orderable]
        return {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "order",
            "code": {
                "coding": [{"system": self._content.analytes.system, "code": test.code, "display": test.display}],
                "text": test.display,
            },
            "subject": subject,
            **references,
        }

    def _order_suggestion(self, spec: SuggestionSpec, patient_id: str) -> Suggestion:
        request = self.service_request(spec.orderable, {"reference": f"Patient/{patient_id}"})
        create = Action.model_construct(type="create", description=spec.description, resource=request)
        # Built, not validated: the content's label and description are checked non-empty at start.
        return Suggestion.model_construct(label=spec.label, uuid=uuid.uuid4(), isRecommended=True, actions=[create])
