! Tridiagonal linear solver (Thomas algorithm) shared by the soil-water and heat solvers.
module colm_tridiag
  use colm_const, only: r8
  implicit none
  private
  public :: tridiag_solve, tridiag_solve_checked
contains
  ! Solves a(j) u(j-1) + b(j) u(j) + c(j) u(j+1) = r(j), j = 1..n; a(1) and c(n) are ignored.
  ! The matrices built by the soil solvers are diagonally dominant, so no pivoting is needed.
  pure subroutine tridiag_solve(n, a, b, c, r, u)
    integer, intent(in) :: n             ! number of unknowns (-)
    real(r8), intent(in) :: a(n)         ! sub-diagonal (units of the system)
    real(r8), intent(in) :: b(n)         ! diagonal
    real(r8), intent(in) :: c(n)         ! super-diagonal
    real(r8), intent(in) :: r(n)         ! right-hand side
    real(r8), intent(out) :: u(n)        ! solution
    logical :: ok                        ! (always .true. without a pivot check)
    call tridiag_solve_checked(n, a, b, c, r, -1.0_r8, u, ok)
  end subroutine tridiag_solve

  ! tridiag_solve for a matrix that may not be safe without pivoting: the elimination stops (ok = .false., u
  ! undefined) at the first pivot smaller than piv_min times the sum of the magnitudes of its row (no check for
  ! piv_min < 0). One division per row (the reciprocal pivot), the only serial dependence of the elimination.
  pure subroutine tridiag_solve_checked(n, a, b, c, r, piv_min, u, ok)
    integer, intent(in) :: n             ! number of unknowns (-)
    real(r8), intent(in) :: a(n)         ! sub-diagonal (units of the system)
    real(r8), intent(in) :: b(n)         ! diagonal
    real(r8), intent(in) :: c(n)         ! super-diagonal
    real(r8), intent(in) :: r(n)         ! right-hand side
    real(r8), intent(in) :: piv_min      ! smallest relative pivot accepted (-)
    real(r8), intent(out) :: u(n)        ! solution
    logical, intent(out) :: ok           ! all pivots accepted (-)
    real(r8) :: gam(n), bet, rbet        ! elimination factors, pivot and its reciprocal
    integer :: j
    ok = .true.
    if (piv_min >= 0.0_r8) ok = abs(b(1)) > piv_min * (abs(b(1)) + abs(c(1)))
    if (.not. ok) return
    rbet = 1.0_r8 / b(1)
    u(1) = r(1) * rbet
    do j = 2, n
      gam(j) = c(j-1) * rbet
      bet = b(j) - a(j) * gam(j)
      if (piv_min >= 0.0_r8) ok = abs(bet) > piv_min * (abs(b(j)) + abs(a(j)) + abs(c(j)))
      if (.not. ok) return
      rbet = 1.0_r8 / bet
      u(j) = (r(j) - a(j) * u(j-1)) * rbet
    end do
    do j = n - 1, 1, -1
      u(j) = u(j) - gam(j+1) * u(j+1)
    end do
  end subroutine tridiag_solve_checked
end module colm_tridiag
