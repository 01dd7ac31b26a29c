# The code of this build has no reactions: 0004_drop_reactions.sql dropped the
# column, so the checked queries naming it must not be compiled in (they would
# not build against this head schema), although 0003_add_reactions.sql ships:
# build.rs's `cfg(reactions)` is turned off in the code that reads it.
s/cfg(reactions)/cfg(any())/g
s/cfg(not(reactions))/cfg(not(any()))/g
s/cfg!(reactions)/cfg!(any())/g
