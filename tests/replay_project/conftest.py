# Nothing to add: installing Interlock registers its pytest plugin, which provides the
# `interlock_replay` fixture.
