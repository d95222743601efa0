"""The six kinds of illegal small chemical operation the campaign hunts (县专项整治工作方案, 二、排查重点).

Codes are stable (they are stored in the ledger and exported); labels are for people. ``number``
is the item of the work plan, (一) to (六); ``measures`` are the disposals the plan prescribes
for that kind (四、处置措施), codes of :data:`skysieve.ledger.lifecycle.DISPOSAL_MEASURES`.
"""

from __future__ import annotations

from dataclasses import dataclass

from skysieve.errors import LedgerError

__all__ = ["SuspectCategory", "SUSPECT_CATEGORIES", "category", "suggest_category"]


@dataclass(frozen=True)
class SuspectCategory:
    """One kind of violation: stable ``code``, work-plan item ``number``, Chinese and English labels."""

    code: str
    number: int
    zh: str
    en: str
    measures: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.zh} / {self.en}"


SUSPECT_CATEGORIES: tuple[SuspectCategory, ...] = (
    SuspectCategory("over_scope", 1, "化工企业超范围生产储存",
                    "Chemical firm producing or storing beyond its licence (products, quantities, methods)",
                    ("stop_rectify",)),
    SuspectCategory("non_chemical_firm", 2, "非化工企业违法从事化工生产",
                    "Non-chemical firm making or trading chemicals without a licence",
                    ("stop_rectify", "dismantle")),
    SuspectCategory("unlicensed_workshop", 3, "无证无照小作坊/黑窝点",
                    "Unlicensed workshop or hidden den (no or incomplete licences)",
                    ("stop_rectify", "dismantle", "shut_down", "judicial_transfer")),
    SuspectCategory("affiliation_rental", 4, "挂靠、租赁、厂中厂",
                    "Production through affiliation, rented premises or a 'factory within a factory'",
                    ("stop_rectify", "dismantle", "shut_down", "judicial_transfer")),
    SuspectCategory("closed_still_producing", 5, "已责令关闭仍生产",
                    "Site ordered closed that kept producing (power and water not cut)",
                    ("shut_down", "dismantle", "judicial_transfer")),
    SuspectCategory("name_mismatch", 6, "名称含生物/科技/新材料但实际化工",
                    "Firm named 'biotech / technology / new materials' whose real business is chemicals",
                    ("stop_rectify", "dismantle")),
)

_BY_CODE = {c.code: c for c in SUSPECT_CATEGORIES}

#: a first guess from the kind of known site a flag lies in (analysts confirm or change it)
_SITE_KIND_GUESS = {
    "licensed_chemical": "over_scope",
    "enterprise": "non_chemical_firm",
    "closed_enterprise": "closed_still_producing",
    "idle_factory": "affiliation_rental",
    "farm": "unlicensed_workshop",
    "scrap_yard": "unlicensed_workshop",
    "idle_house": "unlicensed_workshop",
}


def category(code: str | None) -> SuspectCategory | None:
    """The category for ``code`` (``None`` passes through); an unknown code is a :class:`LedgerError`."""
    if code is None or code == "":
        return None
    try:
        return _BY_CODE[code]
    except KeyError:
        raise LedgerError(f"unknown suspect category {code!r}", ref=code,
                          hint="use one of " + ", ".join(_BY_CODE)) from None


def suggest_category(site_kind: str | None) -> str | None:
    """A first guess of the category from the kind of site (``SITE_KINDS``) a flag lies in, or None."""
    return _SITE_KIND_GUESS.get(site_kind or "")
