-- 0004_revisions: a task may revise another task's blueprint (choreo request revise, #19).
-- Applied in one transaction by lifecycle/migrations.py.

-- path 'revise': the task came from com.choreo.choreography.revision.requested.v1; its request
-- document holds parent_task_id and the keep/redo bars. The parent is not a foreign key, so an
-- operator deleting an old task neither cascades into its revisions nor is blocked by them.
ALTER TABLE tasks DROP CONSTRAINT tasks_path_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_path_check CHECK (path IN ('song', 'describe', 'revise'));
