-- The rows of unique users by {keys} that users.sql left in _user_states: the registers of
-- each cell, and its users' hashes where it is small (else NULL).
SELECT {keys},
       (state::STRUCT(precision UTINYINT, registers UTINYINT[])).registers AS registers,
       user_hashes
FROM _user_states
