"""Data files shipped with the policy decision point (read with importlib.resources).

- ``document_type_matrix.csv``: the habilitation matrix (profession x typeCode), see
  :mod:`habilitation.matrix`;
- ``PDT-INF-526_matrice_droits_fonctionnels_v1.8.csv`` and ``PDT-INF-526_notes.csv``: the
  functional rights matrix, see :mod:`habilitation.rights`;
- ``JDV_J66_TypeCode_DMP.csv``: the DMP typeCodes (JDV_J66, OID 1.2.250.1.213.1.1.5.7).
"""
