"""The status recorder: makes the task row reflect ``video.completed`` and ``task.failed``."""
