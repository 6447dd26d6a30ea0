"""The dispatcher: starts one video job per ``blueprint.ready`` (Cloud Run Jobs or a subprocess)."""
