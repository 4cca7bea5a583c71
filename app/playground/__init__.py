"""The htmx playground: chat, arena, images, embeddings, inspector and run cards."""
