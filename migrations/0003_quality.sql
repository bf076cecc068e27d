-- Migration number: 0003   Speed profile of a job (standard or fast); older jobs were standard.
ALTER TABLE jobs ADD COLUMN quality TEXT NOT NULL DEFAULT 'standard';
