"""One module per transaction; ``TRANSACTIONS`` is the catalogue the endpoint dispatches on
(keyed by WS-Addressing Action), as IPF's ``XDS.java`` lists its transactions."""

from __future__ import annotations

from xds.transactions import (
    dmp_authorizations,
    iti18_stored_query,
    iti41_provide_and_register,
    iti42_register,
    iti43_retrieve,
    iti57_update_metadata,
    iti62_remove_metadata,
)
from xds.transactions.base import Transaction

_ALL: tuple[Transaction, ...] = (
    iti41_provide_and_register.TRANSACTION,
    iti42_register.TRANSACTION,
    iti18_stored_query.TRANSACTION,
    iti43_retrieve.TRANSACTION,
    iti57_update_metadata.TRANSACTION,
    iti62_remove_metadata.TRANSACTION,
    *dmp_authorizations.TRANSACTIONS,
)

TRANSACTIONS: dict[str, Transaction] = {
    action: t for t in _ALL for action in (t.action, *t.aliases)
}

__all__ = ["TRANSACTIONS", "Transaction"]
