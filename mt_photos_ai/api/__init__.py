"""HTTP routes: Immich's ML protocol and the MT Photos AI API, both thin over the runtime."""
