-- Undo of V8 (Citus): V8 validated the foreign keys and added missing
-- themes; a constraint cannot be made NOT VALID again, and the themes stay
-- (V5's undo drops the table). Nothing to revert: the statement only
-- records that the undo ran.
SELECT 'V8 validated constraints: nothing to undo' AS undo_v8;
