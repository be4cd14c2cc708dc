"""Typed search attributes: what an operator filters on in the Temporal UI.

The dev server registers them at start (`stack/temporal_dev.py`), the
docker-compose stack with `temporal operator search-attribute create`, tests
through `WorkflowEnvironment.start_local(search_attributes=...)`.
"""

from temporalio.common import SearchAttributeKey

ACCOUNT_PHASE = SearchAttributeKey.for_keyword("AccountPhase")
# GREEN / AMBER / RED, or UNSCORED when too little of the signal weight has data
HEALTH_BAND = SearchAttributeKey.for_keyword("HealthBand")
HEALTH_SCORE = SearchAttributeKey.for_float("HealthScore")
CHURN_RISK = SearchAttributeKey.for_keyword("ChurnRisk")
RENEWAL_DATE = SearchAttributeKey.for_datetime("RenewalDate")
ARR = SearchAttributeKey.for_float("ARR")
CSM_OWNER = SearchAttributeKey.for_keyword("CsmOwner")
ACCOUNT_TIER = SearchAttributeKey.for_keyword("AccountTier")

ALL_KEYS = [
    ACCOUNT_PHASE,
    HEALTH_BAND,
    HEALTH_SCORE,
    CHURN_RISK,
    RENEWAL_DATE,
    ARR,
    CSM_OWNER,
    ACCOUNT_TIER,
]


def cli_registrations() -> list[str]:
    """`Name=Type` strings for `temporal server start-dev --search-attribute`."""
    return [f"{key.name}={_cli_type(key)}" for key in ALL_KEYS]


def _cli_type(key: SearchAttributeKey) -> str:
    from temporalio.common import SearchAttributeIndexedValueType as T

    return {
        T.KEYWORD: "Keyword",
        T.DOUBLE: "Double",
        T.DATETIME: "Datetime",
        T.INT: "Int",
        T.TEXT: "Text",
        T.BOOL: "Bool",
        T.KEYWORD_LIST: "KeywordList",
    }[key.indexed_value_type]
