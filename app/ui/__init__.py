"""The browser playground: a server-rendered htmx page over the registry, at / and /ui/."""
