"""Globally rare: organisations exchange privacy-preserving summaries of the destinations common in their fleets
(docs/SHARING.md). An organisation exports a keyed, randomised membership filter (:func:`export_prevalence`,
:class:`PrevalenceExport`); a coordinator merges them, one vote per organisation (:func:`merge_exports`,
:class:`Consortium`); the engine reads the merge (:class:`GlobalPrevalence`, ``Config.global_prevalence``)."""
from ._keys import MIN_KEY_BYTES, key_id, new_key_file, org_id, read_key
from ._policy import GlobalPrevalence, Verdict
from ._sketch import SHARED_PARAMS, Consortium, PrevalenceExport, epsilon, export_prevalence, merge_exports

__all__ = ["Consortium", "GlobalPrevalence", "MIN_KEY_BYTES", "PrevalenceExport", "SHARED_PARAMS", "Verdict",
           "epsilon", "export_prevalence", "key_id", "merge_exports", "new_key_file", "org_id", "read_key"]
