"""Exercise definitions, one module per chapter: ``chNN.py`` registers exercises ``"N.M"``.

The registry (:mod:`ebmlab.exercises._registry`) imports a chapter's module the first
time one of its exercises is asked for; see :mod:`ebmlab.exercises` for how to add one.
:mod:`ebmlab.exercises.bank._common` holds the picklable energies and probes they share.
"""
