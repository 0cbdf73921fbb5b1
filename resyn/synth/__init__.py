"""The synthesis loop's building blocks: prompt rendering (:mod:`resyn.synth.prompts`) and module
extraction from model answers (:mod:`resyn.synth.extract`), plus the loop itself.

Nothing is imported here so that ``import resyn.synth.extract`` stays cheap (no jinja, no sandbox).
"""
