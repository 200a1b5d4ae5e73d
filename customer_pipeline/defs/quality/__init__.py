"""Quality stage: Great Expectations gates as asset checks and the data-quality report asset."""
