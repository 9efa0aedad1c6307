"""The leg-cramp context: which Conditions count, code matching, CKD stage, and medicines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cds_service.clinical.cramp_context import CrampContext, assess_context
from cds_service.content.loader import Content, load_content
from cds_service.content.schema import ContextRules, Drug, MedicineIndex
from cds_service.content.terms import words
from cds_service.fhir.facts import ContextReader
from tests.builders import ICD10, PATIENT, RXNORM, SNOMED, condition, medication

AS_OF = datetime(2026, 11, 25, 12, tzinfo=UTC)


def context(
    content: Content, conditions: list[dict[str, Any]] = (), medications: list[dict[str, Any]] = ()
) -> CrampContext:  # type: ignore[assignment]
    reader = ContextReader(content.context)
    return assess_context(
        reader.conditions(conditions, PATIENT).items,
        reader.medications(medications, PATIENT).items,
        content.context,
        AS_OF,
    )


# --- conditions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clinical", "verification", "counts"),
    [
        ("active", "confirmed", True),
        ("recurrence", "confirmed", True),
        ("relapse", None, True),
        ("active", "provisional", True),
        ("resolved", "confirmed", False),
        ("inactive", "confirmed", False),
        ("remission", "confirmed", False),
        ("active", "entered-in-error", False),
        ("active", "refuted", False),
        (None, "confirmed", False),
    ],
)
def test_condition_status(content: Content, clinical: str | None, verification: str | None, counts: bool) -> None:
    assert context(content, [condition("R25.2", clinical=clinical, verification=verification)]).cramps is counts


@pytest.mark.parametrize(
    ("code", "system", "cramps"),
    [
        ("R25.2", ICD10, True),
        ("R252", ICD10, True),  # written without its dot
        ("G47.62", ICD10, True),
        ("M62.831", ICD10, True),
        ("55300003", SNOMED, True),
        ("R25.1", ICD10, False),  # tremor
        ("M62.83", ICD10, False),  # muscle spasm, not of calf
        ("R25.2", SNOMED, False),  # an ICD code under another system is not one
        ("55300003", ICD10, False),
    ],
)
def test_cramp_codes(content: Content, code: str, system: str, cramps: bool) -> None:
    assert context(content, [condition(code, system)]).cramps is cramps


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        ("E86.0", "dehydration"),
        ("N18.3", "chronic kidney disease"),
        ("E11.9", "diabetes"),
        ("E10.65", "diabetes"),
        ("K70.30", "liver disease"),
        ("K77.8", "liver disease"),
        ("E83.51", "hypocalcemia"),
        ("E87.6", "hypokalemia"),
        ("E83.42", "hypomagnesemia"),
    ],
)
def test_other_causes(content: Content, code: str, cause: str) -> None:
    assert context(content, [condition(code)]).other_causes == (cause,)


@pytest.mark.parametrize("code", ["K69.9", "K78", "E12.9", "N19", "E86.1"])
def test_not_other_causes(content: Content, code: str) -> None:
    assert context(content, [condition(code)]).other_causes == ()


def test_snomed_dehydration(content: Content) -> None:
    assert context(content, [condition("34095006", SNOMED)]).other_causes == ("dehydration",)


@pytest.mark.parametrize(
    ("code", "advanced"),
    [
        ("N18.4", True),
        ("N18.5", True),
        ("N18.6", True),
        ("N184", True),
        ("N18.3", False),
        ("N18.9", False),
        ("N18.30", False),
    ],
)
def test_ckd_stage(content: Content, code: str, advanced: bool) -> None:
    assert context(content, [condition(code)]).ckd_advanced is advanced


def test_another_patients_conditions_are_ignored(content: Content) -> None:
    reader = ContextReader(content.context)
    read = reader.conditions([condition("R25.2", patient="p2"), {"resourceType": "Condition", "subject": 1}], PATIENT)
    assert read.items == () and read.other_patient == 1 and read.malformed == 1


# --- medicines ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "drug"),
    [
        (medication("Furosemide 40 MG Oral Tablet", "310429"), "furosemide (loop diuretic)"),
        (medication("HYDROCHLOROTHIAZIDE 25 MG TABLET"), "hydrochlorothiazide (thiazide diuretic)"),
        (medication("Lipitor", "83367"), "atorvastatin (statin)"),  # the ingredient's own code
        (medication("albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"), "albuterol (beta-2 agonist)"),
        (medication("spironolactone 25 MG Oral Tablet"), "spironolactone (potassium-sparing diuretic)"),
    ],
)
def test_cramp_drugs(content: Content, resource: dict[str, Any], drug: str) -> None:
    assert context(content, medications=[resource]).drugs == (drug,)


def test_drug_by_text_only(content: Content) -> None:
    resource = medication("x")
    resource["medicationCodeableConcept"] = {"text": "Simvastatin 20mg tablets"}
    assert context(content, medications=[resource]).drugs == ("simvastatin (statin)",)


def test_drug_by_reference_display_and_contained_medication(content: Content) -> None:
    by_display = medication("x", id="m1")
    del by_display["medicationCodeableConcept"]
    by_display["medicationReference"] = {"reference": "Medication/123", "display": "Torsemide 10 MG"}
    contained = medication("x", id="m2")
    del contained["medicationCodeableConcept"]
    contained["contained"] = [
        {
            "resourceType": "Medication",
            "id": "med",
            "code": {"coding": [{"system": RXNORM, "code": "197361", "display": "Rosuvastatin 10 MG"}]},
        }
    ]
    contained["medicationReference"] = {"reference": "#med"}
    assert context(content, medications=[by_display, contained]).drugs == (
        "torsemide (loop diuretic)",
        "rosuvastatin (statin)",
    )


@pytest.mark.parametrize("status", ["stopped", "completed", "draft", "cancelled", "entered-in-error", "on-hold"])
def test_only_active_medications_count(content: Content, status: str) -> None:
    assert context(content, medications=[medication("Furosemide 40 MG", status=status)]).drugs == ()


def test_vitamin_d_products(content: Content) -> None:
    got = context(
        content,
        medications=[
            medication("Cholecalciferol 1000 UNT Oral Tablet"),
            medication("Drisdol", "2418"),
            medication("ergocalciferol 50000 UNT"),
        ],
    )
    assert got.vitamin_d_products == ("cholecalciferol", "ergocalciferol")
    assert got.drugs == ()


def test_an_unrelated_medicine_matches_nothing(content: Content) -> None:
    got = context(content, medications=[medication("metformin 500 MG Oral Tablet", "861007")])
    assert got == CrampContext()


@pytest.mark.parametrize(
    ("text", "product"),
    [
        ("Vitamin D3 2000 unit", "cholecalciferol"),
        ("D3 1000 IU capsule", "cholecalciferol"),
        ("Calcium Carbonate 600 MG / Cholecalciferol 400 UNT Oral Tablet", "cholecalciferol"),
        ("calcitriol 0.25 MCG Oral Capsule", "calcitriol"),
        ("Paricalcitol 1 MCG Oral Capsule", "paricalcitol"),
        ("ALFACALCIDOL 0.5 MCG", "alfacalcidol"),
        ("doxercalciferol 2.5 MCG", "doxercalciferol"),
        ("calcifediol 30 MCG ER capsule", "calcifediol"),
        ("Vitamin D2 50,000 unit", "ergocalciferol"),
        ("Calcium 600 + vitamin D", "vitamin D"),
        ("VITAMIN D 1000 unit tablet", "vitamin D"),
        ("Vitamin D-400", "vitamin D"),
        ("Vitamin B12 1000 MCG", None),
        ("Vitamin D3D 1 tab", None),  # not a word
        ("Kd3 powder", None),
        ("Hydroxychloroquine 200 MG", None),
    ],
)
def test_every_vitamin_d_product_by_name_alone_or_combined(content: Content, text: str, product: str | None) -> None:
    resource = medication("x")
    resource["medicationCodeableConcept"] = {"text": text}
    assert context(content, medications=[resource]).vitamin_d_products == ((product,) if product else ())


def test_a_thiazide_is_not_taken_for_its_longer_namesake(content: Content) -> None:
    """Whole words: hydrochlorothiazide is not chlorothiazide, though it holds the name."""
    hctz = context(content, medications=[medication("hydrochlorothiazide 25 MG Oral Tablet")])
    assert hctz.drugs == ("hydrochlorothiazide (thiazide diuretic)",)
    chlorothiazide = context(content, medications=[medication("Chlorothiazide 250 MG Oral Tablet", "2396")])
    assert chlorothiazide.drugs == ("chlorothiazide (thiazide diuretic)",)


@pytest.mark.parametrize(
    ("name", "calls_for_potassium_and_magnesium"),
    [
        ("furosemide 20 MG", True),
        ("bumetanide 1 MG", True),
        ("metolazone 5 MG", True),
        ("indapamide 2.5 MG", True),
        ("spironolactone 25 MG", False),  # potassium-sparing
        ("atorvastatin 40 MG", False),
        ("albuterol inhaler", False),
    ],
)
def test_loop_and_thiazide_diuretics_call_for_potassium_and_magnesium(
    content: Content, name: str, calls_for_potassium_and_magnesium: bool
) -> None:
    got = context(content, medications=[medication(name)])
    assert bool(got.drugs) and bool(got.electrolyte_drugs) is calls_for_potassium_and_magnesium


@pytest.mark.parametrize(
    ("code", "system", "pregnant"),
    [
        ("O09.512", ICD10, True),  # supervision of elderly primigravida
        ("O24.419", ICD10, True),  # gestational diabetes
        ("O9A.119", ICD10, True),
        ("Z34.00", ICD10, True),
        ("Z33.1", ICD10, True),
        ("Z33.2", ICD10, False),  # an encounter for elective termination: not an ongoing pregnancy
        ("Z3A.20", ICD10, False),  # weeks of gestation alone: a supplementary code
        ("77386006", SNOMED, True),
        ("72892002", SNOMED, True),
        ("N18.4", ICD10, False),
    ],
)
def test_pregnancy(content: Content, code: str, system: str, pregnant: bool) -> None:
    assert context(content, [condition(code, system)]).pregnant is pregnant


def test_a_resolved_pregnancy_does_not_count(content: Content) -> None:
    assert context(content, [condition("Z34.00", clinical="resolved")]).pregnant is False


def test_vitamin_d_started_is_the_latest_start_of_an_active_product(content: Content) -> None:
    got = context(
        content,
        medications=[
            medication("cholecalciferol 1000 UNT", authored="2026-03-01"),
            medication("Vitamin D2 50000 unit", authored="2026-11-02T09:30:00Z"),
            medication("furosemide 20 MG", authored="2026-11-20"),  # not vitamin D
            medication("calcitriol 0.25 MCG", status="stopped", authored="2026-11-21"),  # stopped
        ],
    )
    assert got.vitamin_d_products == ("cholecalciferol", "ergocalciferol")
    assert got.vitamin_d_started is not None and got.vitamin_d_started.isoformat() == "2026-11-02T09:30:00+00:00"
    assert context(content, medications=[medication("calcitriol 0.25 MCG")]).vitamin_d_started is None
    bad_date = context(content, medications=[medication("calcitriol 0.25 MCG", authored="yesterday")])
    assert bad_date.vitamin_d_products == ("calcitriol",) and bad_date.vitamin_d_started is None


def _encounter_diagnosis(code: str, recorded: str | None, **fields: Any) -> dict[str, Any]:
    """As Epic records an encounter diagnosis: no clinicalStatus, no verificationStatus, a category
    of encounter-diagnosis, and codings in several systems side by side."""
    resource = condition(code, clinical=None, verification=None)
    resource["code"]["coding"] += [
        {"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.696871", "code": "12345"},
        {"system": "http://hl7.org/fhir/sid/icd-9-cm", "code": "729.82"},
    ]
    resource["category"] = [
        {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "encounter-diagnosis"}
            ]
        }
    ]
    if recorded is not None:
        resource["recordedDate"] = recorded
    return resource | fields


@pytest.mark.parametrize(
    ("recorded", "counts"),
    [
        ("2026-11-25", True),  # today's visit
        ("2026-08-27T09:00:00Z", True),  # 90 days and a few hours
        ("2026-08-26", False),  # past the window
        ("2027-01-01", False),  # in the future
        (None, False),  # no date: cannot be called current
    ],
)
def test_an_encounter_diagnosis_without_clinical_status_counts_when_recent(
    content: Content, recorded: str | None, counts: bool
) -> None:
    assert context(content, [_encounter_diagnosis("R25.2", recorded)]).cramps is counts


def test_an_encounter_diagnosis_dated_by_onset(content: Content) -> None:
    resource = _encounter_diagnosis("R25.2", None, onsetDateTime="2026-11-20")
    assert context(content, [resource]).cramps is True


def test_a_refuted_encounter_diagnosis_never_counts(content: Content) -> None:
    resource = _encounter_diagnosis("R25.2", "2026-11-25")
    resource["verificationStatus"] = {"coding": [{"code": "refuted"}]}
    assert context(content, [resource]).cramps is False


@pytest.mark.parametrize(
    ("text", "drug"),
    [
        ("LASIX 40 MG", "furosemide (loop diuretic)"),  # a brand name: the product, not the ingredient
        ("Bumex 1 mg tablet", "bumetanide (loop diuretic)"),
        ("Microzide 12.5 MG Oral Capsule", "hydrochlorothiazide (thiazide diuretic)"),
        ("Zaroxolyn 2.5 MG", "metolazone (thiazide diuretic)"),
        ("Crestor 10 MG Oral Tablet", "rosuvastatin (statin)"),
        ("Livalo 2 MG", "pitavastatin (statin)"),
        ("ProAir HFA 90 MCG/ACTUAT", "albuterol (beta-2 agonist)"),
        ("Advair Diskus 250/50", "salmeterol (beta-2 agonist)"),
        ("Breo Ellipta 100/25", "vilanterol (beta-2 agonist)"),
        ("Venofer 20 MG/ML Injection", "iron sucrose (reported in one study)"),
        ("naproxen sodium 220 MG", "naproxen (reported in one study)"),
    ],
)
def test_brand_and_product_names_match_their_ingredient(content: Content, text: str, drug: str) -> None:
    resource = medication("x")
    resource["medicationCodeableConcept"] = {"coding": [{"system": RXNORM, "code": "999999", "display": text}]}
    assert context(content, medications=[resource]).drugs == (drug,)


def test_medication_reference_resolved_from_the_included_medication(content: Content) -> None:
    """Epic names the drug only by medicationReference; `_include` brings the Medication along."""
    request = medication("x", id="mr-epic")
    del request["medicationCodeableConcept"]
    request["medicationReference"] = {"reference": "Medication/eMed123"}
    included = {
        "resourceType": "Medication",
        "id": "eMed123",
        "code": {"coding": [{"system": RXNORM, "code": "310429", "display": "furosemide 20 MG Oral Tablet"}]},
    }
    absolute = medication("x", id="mr-abs")
    del absolute["medicationCodeableConcept"]
    absolute["medicationReference"] = {"reference": "https://ehr.example.org/fhir/Medication/eMed456/_history/2"}
    statin = {"resourceType": "Medication", "id": "eMed456", "code": {"text": "Lipitor 20 MG"}}
    got = context(content, medications=[request, included, absolute, statin])
    assert got.drugs == ("furosemide (loop diuretic)", "atorvastatin (statin)")


def test_a_home_medicine_counts_as_taken(content: Content) -> None:
    """Oracle Health: intent plan, reportedBoolean, patient-specified, ingredient-level RxNorm; an
    over-the-counter supplement with a proprietary code and text only."""
    home = medication("chlorothiazide", "2396", intent="plan")
    home["reportedBoolean"] = True
    home["category"] = [{"coding": [{"code": "patientspecified"}]}]
    supplement = medication("x", intent="plan")
    supplement["medicationCodeableConcept"] = {
        "coding": [{"system": "https://fhir.cerner.com/ec2458f2/synonym", "code": "2748392"}],
        "text": "Vitamin D3 1000 IU oral capsule",
    }
    got = context(content, medications=[home, supplement])
    assert got.drugs == ("chlorothiazide (thiazide diuretic)",) and got.vitamin_d_products == ("cholecalciferol",)


def test_names_match_as_whole_words_longest_first() -> None:
    """The content's names are matched as runs of whole words (rulebook, "Medicines in text"): at each
    word the longest name of a list wins, a name never matches inside another word, punctuation
    between words does not matter, and lists are apart (a longer name in one list does not hide a
    shorter one of another)."""
    nested = ("vitamin d", "vitamin d 400", "vitamin d3", "ethacrynic", "ethacrynic acid", "d vi sol")
    index = MedicineIndex({"x": [Drug(ingredient=name) for name in nested]}, {"y": ["ethacrynic acid 25"]})

    def found(text: str, group: str = "x") -> list[str]:
        return [d.ingredient for d in index.found(index.scan(frozenset(), text), group)]

    assert found("Vitamin D 400 unit") == ["vitamin d 400"]  # the longer of two names that start together
    assert found("vitamin D3") == ["vitamin d3"]  # "vitamin d" is not a name inside "vitamin d3"
    assert found("ethacrynic acid 25 mg; ethacrynic") == ["ethacrynic", "ethacrynic acid"]
    assert found("D-Vi-Sol drops") == found("d vi sol") == ["d vi sol"]
    assert found("lidocaine; vitamind; hydroethacrynic") == []
    assert sorted(index.scan(frozenset(), "ethacrynic acid 25 mg")) == ["x", "y"]


def test_matching_is_linear_in_the_text() -> None:
    """However hostile the text, each word is compared with at most as many words as the longest
    name holds: counted, not timed."""

    class Counted(tuple[str, ...]):
        reads = 0

        def __getitem__(self, key: Any) -> Any:
            Counted.reads += 1
            return super().__getitem__(key)

    index = load_content().context.medicine_index
    longest = index.tree._depth
    for text in ("vitamin " * 50_000, "fosamax plus " * 30_000, "50,000 " * 40_000 + "units", "calcium " * 60_000):
        line = Counted(words(text))
        Counted.reads = 0
        index.tree.find_all(line)
        assert Counted.reads <= longest * len(line), text[:20]


def test_a_code_in_two_condition_sets_counts_in_both(content: Content) -> None:
    """N18.4 is listed for advanced CKD and falls under the N18 prefix of chronic kidney disease."""
    ckd4 = context(content, [condition("N18.4")])
    assert ckd4.ckd_advanced is True
    assert "chronic kidney disease" in ckd4.other_causes
    both = context(content, [condition("R25.2"), condition("N18.4"), condition("E11.9")])
    assert both.cramp_codes == ("R25.2",)
    assert set(both.other_causes) >= {"chronic kidney disease", "diabetes"}


def test_an_empty_drug_list_finds_nothing() -> None:
    """A list the content leaves empty must match nothing, not the empty string between two spaces."""
    index = MedicineIndex({"x": []}, {"y": []})
    assert index.scan(frozenset({"4603"}), "furosemide  20 mg (oral)\n") == {}


def test_a_code_the_content_repeats_is_shown_once(content: Content) -> None:
    data = content.context.model_dump()
    data["cramps"] |= {"icd10": ["R25.2", "R252"], "snomed": ["1", "1"]}
    rules = ContextRules.model_validate(data)
    reader = ContextReader(rules)
    conditions = reader.conditions([condition("R25.2"), condition("1", system=SNOMED)], PATIENT).items
    assert assess_context(conditions, [], rules, AS_OF).cramp_codes == ("1", "R252")


def test_a_changed_copy_of_the_rules_matches_with_its_own_sets(content: Content) -> None:
    """The indexes are cached on the rules; a copy must not keep the original's."""
    rules = content.context
    cramp = [condition("R25.2")]
    assert assess_context(ContextReader(rules).conditions(cramp, PATIENT).items, [], rules, AS_OF).cramps
    changed = rules.model_copy(update={"cramps": rules.cramps.model_copy(update={"icd10": ["G47.62"]})})
    read = ContextReader(changed).conditions([*cramp, condition("G47.62")], PATIENT).items
    assert assess_context(read, [], changed, AS_OF).cramp_codes == ("G47.62",)
