"""The options of the ``distill`` tuner (``tuner.options`` in a suite)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class DistillOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: ``finetune`` (fine-tune the base in this run) or ``run:<finished run directory>``
    teacher: str = "finetune"
    #: softmax temperature of the soft targets
    temperature: float = Field(default=2.0, gt=0)
    #: weight of the distillation (KL) term; ``1 - alpha`` weighs cross-entropy on the labels
    alpha: float = Field(default=0.5, ge=0, le=1)
    #: transformer blocks of the student (default: half the teacher's, rounded up)
    student_layers: int | None = Field(default=None, ge=1)
    #: epochs of the teacher fine-tuning (default: ``tuner.training.epochs``)
    teacher_epochs: float | None = Field(default=None, gt=0)
    #: learning rate of the teacher fine-tuning (default: ``tuner.training.learning_rate``)
    teacher_learning_rate: float | None = Field(default=None, gt=0)

    @field_validator("teacher")
    @classmethod
    def _teacher(cls, value: str) -> str:
        if value == "finetune":
            return value
        if value.startswith("run:") and value[4:].strip():
            return value
        raise ValueError("use 'finetune' or 'run:<path to a finished auditft run directory>'")
