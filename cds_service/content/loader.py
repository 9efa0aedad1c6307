"""Loading `cards/` once at start: every file read, validated and cross-checked, so that a broken
file stops the service with a message naming the file and the problem, instead of failing on some
patient's chart later."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import jinja2
import yaml
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from pydantic import BaseModel, ValidationError

from .. import escaping
from ..validation import problems
from .schema import (
    CARD_KINDS,
    SUGGESTION_WORDING,
    AnalyteTable,
    Catalogue,
    CodeRole,
    ContextRules,
    MedicineRules,
    Profile,
    SourceSpec,
    Thresholds,
)
from .wording import and_list, capitalize, distinct_rows, format_number

_M = TypeVar("_M", bound=BaseModel)


class ContentError(Exception):
    """A content file is missing, unreadable or inconsistent; the message names the file."""


@dataclass(frozen=True)
class Content:
    """Everything under `cards/`, validated; shared read-only by all requests."""

    analytes: AnalyteTable
    code_roles: dict[str, CodeRole]
    thresholds: Thresholds
    context: ContextRules
    catalogue: Catalogue
    summaries: dict[str, jinja2.Template]
    details: dict[str, jinja2.Template]
    version: str  # the catalogue's version and a hash of every content file

    def silent_kinds(self, chosen: list[str] | None, where: str = "CDS_SILENT_KINDS") -> frozenset[str]:
        """The card kinds that run silent: those `chosen` (CDS_SILENT_KINDS, or `where` names the
        choice; "all" for every kind) when it is set, else those the catalogue's `mode` says."""
        kinds = self.catalogue.cards
        if chosen is None:
            return frozenset(kind for kind, spec in kinds.items() if spec.mode == "silent")
        if chosen == ["all"]:
            return frozenset(kinds)
        if unknown := [kind for kind in chosen if kind not in kinds]:
            raise ContentError(f"{where}: unknown card kind {', '.join(unknown)}; known: {', '.join(kinds)}")
        return frozenset(chosen)

    def cause_sources(self, analyte: str, direction: str) -> list[str]:
        """The sources of the medicines an abnormal card names for an analyte and direction."""
        return next(
            (
                c.sources
                for c in self.context.medicines.electrolyte_causes
                if (c.analyte, c.direction) == (analyte, direction)
            ),
            [],
        )

    def source(self, ref: str | SourceSpec, profile: Profile) -> SourceSpec:
        """A source a card names: a catalogue key, `profile` for the profile's, or one written out."""
        if ref == "profile":
            ref = profile.source
        return ref if isinstance(ref, SourceSpec) else self.catalogue.sources[ref]

    def profile(self, name: str) -> Profile:
        try:
            return self.thresholds.vitamin_d_profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.thresholds.vitamin_d_profiles))
            raise ContentError(f"unknown threshold profile {name!r}; known: {known}") from None


def packaged_content_dir() -> Path:
    """The `cards/` shipped in the wheel, or the source checkout's when running from a clone."""
    shipped = Path(str(resources.files("cds_service") / "cards"))
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parents[2] / "cards"


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError:
        raise ContentError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ContentError(f"{path}: cannot be read: {exc}") from None


def _parse(path: Path, model: type[_M], data: Any) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ContentError(f"{path}: {problems(exc)}") from None


def load_content(directory: Path | None = None) -> Content:
    """Read and cross-check every content file; raise ContentError naming the first bad one."""
    directory = directory or packaged_content_dir()
    if not directory.is_dir():
        raise ContentError(f"{directory}: content directory not found")
    analytes_path = directory / "analytes.yaml"
    analytes = _parse(analytes_path, AnalyteTable, _read_yaml(analytes_path))
    thresholds_path = directory / "thresholds.yaml"
    thresholds = _parse(thresholds_path, Thresholds, _read_yaml(thresholds_path))
    _check_payne(thresholds_path, thresholds, analytes)
    medicines_path = directory / "medicines.yaml"
    medicines = _parse(medicines_path, MedicineRules, _read_yaml(medicines_path))
    context_path = directory / "context.yaml"
    context_data = _read_yaml(context_path)
    if isinstance(context_data, dict):
        context_data = {**context_data, "medicines": medicines}
    context = _parse(context_path, ContextRules, context_data)
    catalogue_path = directory / "catalogue.yaml"
    catalogue = _parse(catalogue_path, Catalogue, _read_yaml(catalogue_path))
    _check_catalogue(catalogue_path, catalogue, analytes)
    _check_profiles(thresholds_path, thresholds, catalogue)
    _check_links(catalogue_path, catalogue, thresholds)
    _check_checks(analytes_path, analytes, catalogue)
    if unknown := sorted({s for c in medicines.electrolyte_causes for s in c.sources} - set(catalogue.sources)):
        raise ContentError(f"{medicines_path}: electrolyte_causes cite unknown source {', '.join(unknown)}")
    if unjudged := sorted({c.analyte for c in medicines.electrolyte_causes} - set(analytes.judged)):
        raise ContentError(
            f"{medicines_path}: electrolyte_causes names analyte {', '.join(unjudged)}, which no range judges"
        )
    summaries, details = _templates(directory, catalogue)
    return Content(
        analytes=analytes,
        code_roles=analytes.roles(),
        thresholds=thresholds,
        context=context,
        catalogue=catalogue,
        summaries=summaries,
        details=details,
        version=f"{catalogue.version}+{_digest(directory)}",
    )


def _templates(directory: Path, catalogue: Catalogue) -> tuple[dict[str, jinja2.Template], dict[str, jinja2.Template]]:
    """Each card kind's summary (plain text, from the catalogue) and detail (Markdown, a file)."""
    details_env = _environment(directory, markdown=True)
    summaries_env = _environment(directory, markdown=False)
    summaries: dict[str, jinja2.Template] = {}
    details: dict[str, jinja2.Template] = {}
    for kind, spec in catalogue.cards.items():
        try:
            summaries[kind] = summaries_env.from_string(spec.summary)
        except jinja2.TemplateSyntaxError as exc:
            raise ContentError(f"{directory / 'catalogue.yaml'}: cards.{kind}.summary: {exc.message}") from None
        try:
            details[kind] = details_env.get_template(spec.detail)
        except jinja2.TemplateNotFound:
            raise ContentError(f"{directory / 'templates' / spec.detail}: file not found") from None
        except jinja2.TemplateSyntaxError as exc:
            raise ContentError(f"{exc.filename}: line {exc.lineno}: {exc.message}") from None
    return summaries, details


class _CardCodeGenerator(CodeGenerator):
    """Writes a value of an escaping template as `finalize(value)` alone, not Jinja2's
    `escape(finalize(value))`: `escaping.markdown` already returns the value escaped, as Markup, and
    Jinja2's `escape` only copied it again (a sixth of a card's rendering)."""

    def _escaped_by_finalize(self, frame: Frame, finalize: Any) -> bool:
        return bool(frame.eval_ctx.autoescape) and not frame.eval_ctx.volatile and finalize.src is not None

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if self._escaped_by_finalize(frame, finalize):
            self.write(finalize.src)
        else:
            super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if self._escaped_by_finalize(frame, finalize):
            self.write(")")
        else:
            super()._output_child_post(node, frame, finalize)


class _CardEnvironment(jinja2.Environment):
    """Templates see their own values and filters, none of Jinja2's default globals (`range`,
    `lipsum`...), and each template's globals as a plain dict: Jinja2 copies them into every
    render's and every macro call's context, and copying its usual ChainMap was a tenth of a card's
    rendering."""

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}

    code_generator_class = _CardCodeGenerator


def _environment(directory: Path, *, markdown: bool) -> jinja2.Environment:
    """The Jinja2 environment of card details (Markdown) or summaries (plain text): every value a
    template writes goes through `escaping`, whatever its origin."""
    env = _CardEnvironment(
        loader=jinja2.FileSystemLoader(directory / "templates"),
        undefined=jinja2.StrictUndefined,
        # Details: escaping on, so that macros return Markup and pass whole; values are escaped
        # as Markdown by `finalize` before Jinja2's HTML escaping sees them.
        autoescape=markdown,
        finalize=escaping.markdown if markdown else escaping.plain,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # content is read once: cards must match the version the store records
    )
    env.globals.clear()
    env.filters["and_list"] = and_list
    env.filters["capitalize"] = capitalize
    env.filters["num"] = format_number
    env.filters["distinct_rows"] = distinct_rows
    if markdown:
        env.filters["join"] = escaping.markdown_join
    return env


def _check_catalogue(path: Path, catalogue: Catalogue, analytes: AnalyteTable) -> None:
    def fail(problem: str) -> None:
        raise ContentError(f"{path}: {problem}")

    if missing := [k for k in CARD_KINDS if k not in catalogue.cards]:
        fail(f"cards lacks {', '.join(missing)}")
    _check_reasons(fail, catalogue)
    sources = set(catalogue.sources)
    for kind, spec in catalogue.cards.items():
        for ref in [spec.source, *spec.links]:
            if ref != "profile" and ref not in sources:
                fail(f"cards.{kind} names unknown source {ref!r}")
        for ref in spec.links:
            if ref != "profile" and catalogue.sources[ref].url is None:
                fail(f"cards.{kind} links to source {ref!r}, which has no url")
        for suggestion in spec.suggestions:
            if suggestion.orderable not in analytes.orderables:
                fail(f"cards.{kind} suggests unknown orderable {suggestion.orderable!r}")
        if missing := [f for f in SUGGESTION_WORDING.get(kind, ()) if getattr(spec, f) is None]:
            fail(f"cards.{kind} lacks {', '.join(missing)}")
        if spec.replacement is not None and spec.replacement not in analytes.orderables:
            fail(f"cards.{kind} replaces with unknown orderable {spec.replacement!r}")


def _check_reasons(fail: Callable[[str], None], catalogue: Catalogue) -> None:
    """Each reason once, by code and by what the clinician reads; each kind offers at least one."""
    for field in ("code", "display"):
        values = [getattr(r, field) for r in catalogue.override_reasons]
        if twice := sorted({v for v in values if values.count(v) > 1}):
            fail(f"override_reasons: two reasons with the {field} {', '.join(map(repr, twice))}")
    for reason in catalogue.override_reasons:
        if unknown := [k for k in reason.kinds if k not in catalogue.cards]:
            fail(f"override reason {reason.code} names unknown card kind {', '.join(unknown)}")
    if bare := [kind for kind in catalogue.cards if not catalogue.reasons(kind)]:
        fail(f"no override reason is offered by {', '.join(bare)}")


def _check_profiles(path: Path, thresholds: Thresholds, catalogue: Catalogue) -> None:
    for name, profile in thresholds.vitamin_d_profiles.items():
        source = profile.source if isinstance(profile.source, SourceSpec) else catalogue.sources.get(profile.source)
        if source is None:
            raise ContentError(f"{path}: profile {name} cites unknown source {profile.source!r}")
        if source.url is None:
            raise ContentError(f"{path}: profile {name}'s source has no url")


def _check_links(path: Path, catalogue: Catalogue, thresholds: Thresholds) -> None:
    """A card links each source once, whichever profile runs: a profile whose source a card also
    lists would show one link twice."""
    for name, profile in thresholds.vitamin_d_profiles.items():
        for kind, spec in catalogue.cards.items():
            urls = []
            for ref in spec.links:
                source = profile.source if ref == "profile" else ref
                found = source if isinstance(source, SourceSpec) else catalogue.sources[source]
                urls.append(found.url)
            if twice := sorted({u for u in urls if u is not None and urls.count(u) > 1}):
                raise ContentError(f"{path}: cards.{kind} would link {', '.join(twice)} twice under profile {name}")


def _check_payne(path: Path, thresholds: Thresholds, analytes: AnalyteTable) -> None:
    payne = thresholds.payne
    corrected = analytes.analytes.get(payne.corrects)
    if payne.corrects not in analytes.judged or corrected is None or corrected.corrected is None:
        raise ContentError(f"{path}: payne corrects {payne.corrects!r}, no judged analyte with a `corrected` name")
    if payne.albumin not in analytes.analytes:
        raise ContentError(f"{path}: payne corrects by {payne.albumin!r}, which is no analyte")


def _check_checks(path: Path, analytes: AnalyteTable, catalogue: Catalogue) -> None:
    """Every analyte the check card may suggest has a test it suggests that covers it."""
    offered = {
        a for s in catalogue.cards["electrolytes-check"].suggestions for a in analytes.orderables[s.orderable].covers
    }
    if uncovered := [k for k in analytes.judged if analytes.analytes[k].check and k not in offered]:
        raise ContentError(
            f"{path}: {', '.join(uncovered)} may be checked, but no test electrolytes-check suggests covers it"
        )


def _digest(directory: Path) -> str:
    """A short hash of every content file, so that feedback is tied to the wording shown."""
    sha = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        sha.update(path.relative_to(directory).as_posix().encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()[:12]
