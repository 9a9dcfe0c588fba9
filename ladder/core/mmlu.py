"""MMLU's subject groups and the OLMo ladder's weights for them: one source for eval and fit."""
from __future__ import annotations

from typing import Optional

# Hendrycks et al. 2021, categories.py: the 57 subjects in four groups.
GROUPS = {
    "stem": "abstract_algebra astronomy college_biology college_chemistry college_computer_science "
            "college_mathematics college_physics computer_security conceptual_physics electrical_engineering "
            "elementary_mathematics high_school_biology high_school_chemistry high_school_computer_science "
            "high_school_mathematics high_school_physics high_school_statistics machine_learning".split(),
    "humanities": "formal_logic high_school_european_history high_school_us_history high_school_world_history "
                  "international_law jurisprudence logical_fallacies moral_disputes moral_scenarios philosophy "
                  "prehistory professional_law world_religions".split(),
    "social_sciences": "econometrics high_school_geography high_school_government_and_politics "
                       "high_school_macroeconomics high_school_microeconomics high_school_psychology human_sexuality "
                       "professional_psychology public_relations security_studies sociology us_foreign_policy".split(),
    "other": "anatomy business_ethics clinical_knowledge college_medicine global_facts human_aging management "
             "marketing medical_genetics miscellaneous nutrition professional_accounting professional_medicine "
             "virology".split(),
}
# The OLMo ladder's weights of the groups in its MMLU average (OLMo-ladder scaling/utils.py).
WEIGHTS = {"stem": 0.215, "humanities": 0.335, "social_sciences": 0.219, "other": 0.231}
_GROUP_OF = {subject: group for group, subjects in GROUPS.items() for subject in subjects}


def group_of(subject: str) -> Optional[str]:
    """The group of an MMLU subject; None for a subject MMLU does not have."""
    return _GROUP_OF.get(subject)
