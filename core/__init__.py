"""Descent Lab's science: functions, optimizers, schedules, the engine. No Qt here, ever."""
