# The code of this build has no reactions: 0004_drop_reactions.sql dropped the column.
s/^const HAS_REACTIONS: bool = ChatRoom::CURRENT_SCHEMA_VERSION >= 3;$/const HAS_REACTIONS: bool = false;/
